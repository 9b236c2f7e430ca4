/* test_version.c - SemVer parsing, precedence and ranges: what decides
 * which migrations run, from C and from scripts' `semver` module. */
#include "testutil.h"

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asserts migrate_version_cmp(a, b) == want, naming both on failure. */
static void assert_cmp(const char *a, const char *b, int want)
{
    int got = 99;
    if (migrate_version_cmp(a, b, &got) != MIGRATE_OK)
        fail_msg("cmp(\"%s\", \"%s\") refused", a, b);
    if (got != want)
        fail_msg("cmp(\"%s\", \"%s\") = %d, want %d", a, b, got, want);
}

/* Every pair of the list, both ways: each is below all that follow it. */
static void assert_ascending(const char *const *versions, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_cmp(versions[i], versions[i], 0);
        for (size_t j = i + 1; j < n; j++) {
            assert_cmp(versions[i], versions[j], -1);
            assert_cmp(versions[j], versions[i], 1);
        }
    }
}

static bool in_range(const char *v, const char *from, const char *to)
{
    bool out = false;
    if (migrate_version_in_range(v, from, to, &out) != MIGRATE_OK)
        fail_msg("in_range(%s, %s, %s) refused", v, from ? from : "NULL", to ? to : "NULL");
    return out;
}

/* ---- Precedence -------------------------------------------------------- */

static void test_semver_org_prerelease_examples_ascend(void **state)
{
    (void)state;
    static const char *const chain[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
        "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
    };
    assert_ascending(chain, sizeof chain / sizeof chain[0]);
}

static void test_semver_org_release_examples_ascend(void **state)
{
    (void)state;
    static const char *const chain[] = {"1.0.0", "2.0.0", "2.1.0", "2.1.1"};
    assert_ascending(chain, sizeof chain / sizeof chain[0]);
}

static void test_fields_compare_as_numbers_not_text(void **state)
{
    (void)state;
    static const char *const chain[] = {
        "1.0.9", "1.0.10", "1.9.0", "1.10.0", "9.0.0", "10.0.0", "18446744073709551615.0.0",
    };
    assert_ascending(chain, sizeof chain / sizeof chain[0]);
}

static void test_prerelease_identifiers_follow_semver_rules(void **state)
{
    (void)state;
    /* numeric by value (also past 64 bits), numeric below alphanumeric,
     * alphanumeric in ASCII order (uppercase first), longer set wins */
    static const char *const chain[] = {
        "1.0.0-2", "1.0.0-10", "1.0.0-18446744073709551615", "1.0.0-99999999999999999999999",
        "1.0.0-100000000000000000000000", "1.0.0-Alpha", "1.0.0-a-b", "1.0.0-alpha",
        "1.0.0-alpha.0", "1.0.0-alpha.0.0", "1.0.0-alpha.x", "1.0.0-alphabet", "1.0.0-b",
    };
    assert_ascending(chain, sizeof chain / sizeof chain[0]);
}

static void test_build_metadata_is_ignored_for_precedence(void **state)
{
    (void)state;
    assert_cmp("1.2.0", "1.2.0+build.5", 0);
    assert_cmp("1.2.0+build.5", "1.2.0", 0);
    assert_cmp("1.2.0+a", "1.2.0+b", 0);
    assert_cmp("1.0.0-rc.1+z", "1.0.0-rc.1+a", 0);
    assert_cmp("1.0.0-rc.1+zzz", "1.0.0", -1);
}

static void test_v_prefix_compares_like_the_bare_version(void **state)
{
    (void)state;
    assert_cmp("v1.2.3", "1.2.3", 0);
    assert_cmp("v1.2.3", "v1.2.4", -1);
    assert_cmp("v2.0.0-rc.1", "1.9.9", 1);
}

static void test_compare_sorts_null_before_any_version(void **state)
{
    (void)state;
    migrate_version v;
    assert_int_equal(migrate_version_parse("0.0.0-0", &v), MIGRATE_OK);
    assert_int_equal(migrate_version_compare(NULL, &v), -1);
    assert_int_equal(migrate_version_compare(&v, NULL), 1);
    assert_int_equal(migrate_version_compare(NULL, NULL), 0);
}

/* ---- Parsing --------------------------------------------------------------- */

static void test_valid_versions_parse_into_their_fields(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t major, minor, patch;
        const char *prerelease, *build; /* NULL: absent */
    } cases[] = {
        {"0.0.0", 0, 0, 0, NULL, NULL},
        {"1.2.3", 1, 2, 3, NULL, NULL},
        {"v10.20.30", 10, 20, 30, NULL, NULL},
        {"1.2.3-rc.1+build.5", 1, 2, 3, "rc.1", "build.5"},
        {"1.0.0-0A.is.legal", 1, 0, 0, "0A.is.legal", NULL},
        {"1.0.0-0", 1, 0, 0, "0", NULL},
        {"1.0.0+0.build.1-rc.10000aaa-kk-0.1", 1, 0, 0, NULL, "0.build.1-rc.10000aaa-kk-0.1"},
        {"1.2.3----RC-SNAPSHOT.12.9.1--.12+788", 1, 2, 3, "---RC-SNAPSHOT.12.9.1--.12", "788"},
        {"v2.0.0+001", 2, 0, 0, NULL, "001"},
        {"18446744073709551615.18446744073709551615.18446744073709551615", UINT64_MAX,
         UINT64_MAX, UINT64_MAX, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = cases[i].text;
        migrate_version v;
        if (migrate_version_parse(text, &v) != MIGRATE_OK)
            fail_msg("\"%s\" refused", text);
        assert_true(v.major == cases[i].major);
        assert_true(v.minor == cases[i].minor);
        assert_true(v.patch == cases[i].patch);
        if (cases[i].prerelease == NULL) {
            assert_null(v.prerelease);
            assert_int_equal(v.prerelease_len, 0);
        } else {
            /* a pointer into the text, right after the '-' */
            assert_ptr_equal(v.prerelease, strchr(text, '-') + 1);
            assert_int_equal(v.prerelease_len, strlen(cases[i].prerelease));
            assert_memory_equal(v.prerelease, cases[i].prerelease, v.prerelease_len);
        }
        if (cases[i].build == NULL) {
            assert_null(v.build);
            assert_int_equal(v.build_len, 0);
        } else {
            assert_ptr_equal(v.build, strchr(text, '+') + 1);
            assert_int_equal(v.build_len, strlen(cases[i].build));
            assert_memory_equal(v.build, cases[i].build, v.build_len);
        }
    }
}

static void test_invalid_versions_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"01.1.1", "leading zero in major"},
        {"1.01.1", "leading zero in minor"},
        {"1.1.01", "leading zero in patch"},
        {"1.2.3-01", "leading zero in numeric prerelease identifier"},
        {"1.2.3-rc.00", "leading zero in numeric prerelease identifier"},
        {"1", "missing minor"},
        {"1.2", "missing patch"},
        {"1.2-rc.1", "missing patch"},
        {"1..3", "empty minor"},
        {"1.2.", "empty patch"},
        {"1.2.3.4", "more than three numeric fields"},
        {"", "empty"},
        {"v", "empty major"},
        {"vv1.2.3", "invalid character 'v' in major"},
        {"V1.2.3", "invalid character 'V' in major"},
        {" 1.2.3", "invalid character ' ' in major"},
        {"1.2.3 ", "invalid character ' ' in patch"},
        {"1.2x.3", "invalid character 'x' in minor"},
        {"1.2.3\n", "control or non-ASCII byte in patch"},
        {"1.2.3-\xc3\xa9", "control or non-ASCII byte in prerelease"},
        {"1.2.3-", "empty prerelease identifier"},
        {"1.2.3+", "empty build metadata identifier"},
        {"1.2.3-a..b", "empty prerelease identifier"},
        {"1.2.3-a.", "empty prerelease identifier"},
        {"1.2.3+a..b", "empty build metadata identifier"},
        {"1.2.3-a_b", "invalid character '_' in prerelease"},
        {"1.2.3+%", "invalid character '%' in build metadata"},
        {"1.2.3+b+c", "invalid character '+' in build metadata"},
        {"18446744073709551616.0.0", "major is larger than 18446744073709551615"},
        {"1.99999999999999999999.0", "minor is larger than 18446744073709551615"},
        {"1.0.18446744073709551616", "patch is larger than 18446744073709551615"},
        {"-1.0.0", "empty major"},
        {"1.2.3-+b", "empty prerelease identifier"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = cases[i].text;
        migrate_version v;
        const char *why = NULL;
        if (migrate_version_parse(text, &v) != MIGRATE_EINVAL)
            fail_msg("\"%s\" accepted", text);
        if (mig_version_parse(text, strlen(text), &v, &why) != MIGRATE_EINVAL)
            fail_msg("\"%s\" accepted by mig_version_parse", text);
        if (why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("\"%s\": reason \"%s\", want \"%s\"", text, why ? why : "(none)", cases[i].why);
    }
}

static void test_refused_version_leaves_output_zeroed(void **state)
{
    (void)state;
    migrate_version v;
    memset(&v, 0xff, sizeof v);
    assert_int_equal(migrate_version_parse("1.2.3-a..b", &v), MIGRATE_EINVAL);
    assert_true(v.major == 0 && v.minor == 0 && v.patch == 0);
    assert_null(v.prerelease);
    assert_null(v.build);
}

static void test_parse_reads_only_the_given_length(void **state)
{
    (void)state;
    /* no NUL anywhere: a read past len would show under ASan/valgrind */
    char *text = malloc(10);
    assert_non_null(text);
    memcpy(text, "1.2.3-rc.1", 10);
    migrate_version v;
    const char *why = NULL;

    assert_int_equal(mig_version_parse(text, 10, &v, &why), MIGRATE_OK);
    assert_int_equal(v.prerelease_len, 4);
    assert_int_equal(mig_version_parse(text, 5, &v, &why), MIGRATE_OK);
    assert_null(v.prerelease);
    assert_true(v.patch == 3);
    assert_int_equal(mig_version_parse(text, 3, &v, &why), MIGRATE_EINVAL);
    assert_string_equal(why, "missing patch");
    assert_int_equal(mig_version_parse(text, 0, &v, &why), MIGRATE_EINVAL);
    assert_string_equal(why, "empty");
    free(text);
}

static void test_null_arguments_are_einval(void **state)
{
    (void)state;
    migrate_version v;
    int cmp = 0;
    bool in = true;
    const char *why = NULL;
    assert_int_equal(migrate_version_parse(NULL, &v), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_parse("1.0.0", NULL), MIGRATE_EINVAL);
    assert_int_equal(mig_version_parse(NULL, 0, &v, &why), MIGRATE_EINVAL);
    assert_non_null(why);
    assert_int_equal(mig_version_parse("1.0.0", 5, NULL, NULL), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_cmp(NULL, "1.0.0", &cmp), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_cmp("1.0.0", NULL, &cmp), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_cmp("1.0.0", "1.0.0", NULL), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_in_range(NULL, "1.0.0", "2.0.0", &in), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_in_range("1.5.0", "1.0.0", "2.0.0", NULL), MIGRATE_EINVAL);
}

static void test_cmp_refuses_malformed_versions(void **state)
{
    (void)state;
    int cmp = 99;
    assert_int_equal(migrate_version_cmp("1.2", "1.0.0", &cmp), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_cmp("1.0.0", "1.0.0-", &cmp), MIGRATE_EINVAL);
    assert_int_equal(cmp, 99);
}

/* ---- Ranges: from < v <= to --------------------------------------------------- */

static void test_in_range_excludes_from_and_includes_to(void **state)
{
    (void)state;
    assert_false(in_range("1.0.0", "1.0.0", "2.0.0"));
    assert_true(in_range("1.0.1", "1.0.0", "2.0.0"));
    assert_true(in_range("2.0.0", "1.0.0", "2.0.0"));
    assert_true(in_range("v2.0.0+build.7", "1.0.0", "2.0.0"));
    assert_false(in_range("2.0.1", "1.0.0", "2.0.0"));
    assert_false(in_range("0.9.0", "1.0.0", "2.0.0"));
}

static void test_in_range_places_prereleases_between_releases(void **state)
{
    (void)state;
    assert_true(in_range("2.0.0-rc.1", "1.0.0", "2.0.0"));
    assert_false(in_range("1.0.0-rc.1", "1.0.0", "2.0.0"));
    assert_true(in_range("1.0.0", "1.0.0-rc.1", "1.0.0"));
    assert_false(in_range("2.0.0", "1.0.0", "2.0.0-rc.1"));
}

static void test_in_range_null_bound_is_unbounded(void **state)
{
    (void)state;
    assert_true(in_range("0.0.0", NULL, "1.0.0"));
    assert_false(in_range("1.0.1", NULL, "1.0.0"));
    assert_true(in_range("18446744073709551615.0.0", "1.0.0", NULL));
    assert_false(in_range("1.0.0", "1.0.0", NULL));
    assert_true(in_range("0.0.0-0", NULL, NULL));
}

static void test_in_range_with_from_above_to_is_false(void **state)
{
    (void)state;
    assert_false(in_range("1.5.0", "2.0.0", "1.0.0"));
    assert_false(in_range("2.0.0", "2.0.0", "1.0.0"));
    assert_false(in_range("1.0.0", "2.0.0", "1.0.0"));
}

static void test_in_range_refuses_malformed_versions(void **state)
{
    (void)state;
    bool in = false;
    assert_int_equal(migrate_version_in_range("1.5", "1.0.0", "2.0.0", &in), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_in_range("1.5.0", "01.0.0", "2.0.0", &in), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_in_range("1.5.0", "1.0.0", "2.0.0-", &in), MIGRATE_EINVAL);
    assert_int_equal(migrate_version_in_range("1.5.0", NULL, "x", &in), MIGRATE_EINVAL);
}

/* ---- The `semver` module for scripts --------------------------------------- */

static lua_State *lua_with_semver(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_semver(L);
    lua_setglobal(L, "semver");
    return L;
}

/* Runs a chunk whose assert()s hold the expectations. */
static void run_lua(const char *chunk)
{
    lua_State *L = lua_with_semver();
    char error[1024] = "";
    if (luaL_dostring(L, chunk) != LUA_OK)
        snprintf(error, sizeof error, "%s", lua_tostring(L, -1));
    lua_close(L);
    if (error[0] != '\0')
        fail_msg("%s", error);
}

static void test_lua_compare_returns_precedence(void **state)
{
    (void)state;
    run_lua("assert(semver.compare('1.0.0-alpha', '1.0.0') == -1)\n"
            "assert(semver.compare('1.10.0', '1.9.0') == 1)\n"
            "assert(semver.compare('v2.0.0', '2.0.0+build.5') == 0)\n"
            "assert(math.type(semver.compare('1.0.0', '1.0.0')) == 'integer')\n");
}

static void test_lua_parse_returns_fields(void **state)
{
    (void)state;
    run_lua("local v = semver.parse('v1.2.3-rc.1+build.5')\n"
            "assert(v.major == 1 and v.minor == 2 and v.patch == 3)\n"
            "assert(math.type(v.major) == 'integer')\n"
            "assert(v.prerelease == 'rc.1', v.prerelease)\n"
            "assert(v.build == 'build.5', v.build)\n"
            "local plain = semver.parse('4.5.6')\n"
            "assert(plain.prerelease == nil and plain.build == nil)\n");
}

static void test_lua_parse_gives_float_past_maxinteger(void **state)
{
    (void)state;
    run_lua("local v = semver.parse('9223372036854775807.9223372036854775808.0')\n"
            "assert(v.major == math.maxinteger and math.type(v.major) == 'integer')\n"
            "assert(math.type(v.minor) == 'float' and v.minor == 2^63, v.minor)\n");
}

static void test_lua_parse_returns_nil_and_reason_when_malformed(void **state)
{
    (void)state;
    run_lua("local v, err = semver.parse('1.2')\n"
            "assert(v == nil and err == 'missing patch', err)\n"
            "v, err = semver.parse('1.2.3-01')\n"
            "assert(v == nil and err == 'leading zero in numeric prerelease identifier', err)\n");
}

static void test_lua_in_range_excludes_from_and_includes_to(void **state)
{
    (void)state;
    run_lua("assert(semver.in_range('1.5.0', '1.0.0', '2.0.0') == true)\n"
            "assert(semver.in_range('1.0.0', '1.0.0', '2.0.0') == false)\n"
            "assert(semver.in_range('2.0.0', '1.0.0', '2.0.0') == true)\n"
            "assert(semver.in_range('2.0.0-rc.1', '1.0.0', '2.0.0') == true)\n"
            "assert(semver.in_range('3.0.0', nil, nil) == true)\n"
            "assert(semver.in_range('3.0.0', '1.0.0') == true)\n"
            "assert(semver.in_range('0.1.0', nil, '1.0.0') == true)\n"
            "assert(semver.in_range('1.5.0', '2.0.0', '1.0.0') == false)\n");
}

static void test_lua_malformed_version_raises_error_naming_it(void **state)
{
    (void)state;
    run_lua("local ok, err = pcall(semver.compare, '1.0.0', 'x.y')\n"
            "assert(not ok)\n"
            "assert(err == 'semver.compare: \"x.y\": not a SemVer version (invalid character \\'x\\' in major)', err)\n"
            "ok, err = pcall(semver.in_range, '1.0.0', nil, '2.0')\n"
            "assert(not ok)\n"
            "assert(err == 'semver.in_range: \"2.0\": not a SemVer version (missing patch)', err)\n"
            "ok, err = pcall(semver.in_range, 'v1', '1.0.0')\n"
            "assert(not ok and err:find('\"v1\"', 1, true), err)\n"
            "ok, err = pcall(semver.in_range, '1.0.0', '1.0.0-')\n"
            "assert(not ok and err:find('\"1.0.0-\"', 1, true), err)\n");
}

static void test_lua_non_string_argument_raises(void **state)
{
    (void)state;
    run_lua("local ok, err = pcall(semver.compare, {}, '1.0.0')\n"
            "assert(not ok and err:find('string expected', 1, true), err)\n"
            "ok, err = pcall(semver.parse)\n"
            "assert(not ok and err:find('string expected', 1, true), err)\n"
            "ok, err = pcall(semver.in_range, '1.0.0', false)\n"
            "assert(not ok and err:find('string expected', 1, true), err)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semver_org_prerelease_examples_ascend),
        cmocka_unit_test(test_semver_org_release_examples_ascend),
        cmocka_unit_test(test_fields_compare_as_numbers_not_text),
        cmocka_unit_test(test_prerelease_identifiers_follow_semver_rules),
        cmocka_unit_test(test_build_metadata_is_ignored_for_precedence),
        cmocka_unit_test(test_v_prefix_compares_like_the_bare_version),
        cmocka_unit_test(test_compare_sorts_null_before_any_version),
        cmocka_unit_test(test_valid_versions_parse_into_their_fields),
        cmocka_unit_test(test_invalid_versions_are_refused_with_a_reason),
        cmocka_unit_test(test_refused_version_leaves_output_zeroed),
        cmocka_unit_test(test_parse_reads_only_the_given_length),
        cmocka_unit_test(test_null_arguments_are_einval),
        cmocka_unit_test(test_cmp_refuses_malformed_versions),
        cmocka_unit_test(test_in_range_excludes_from_and_includes_to),
        cmocka_unit_test(test_in_range_places_prereleases_between_releases),
        cmocka_unit_test(test_in_range_null_bound_is_unbounded),
        cmocka_unit_test(test_in_range_with_from_above_to_is_false),
        cmocka_unit_test(test_in_range_refuses_malformed_versions),
        cmocka_unit_test(test_lua_compare_returns_precedence),
        cmocka_unit_test(test_lua_parse_returns_fields),
        cmocka_unit_test(test_lua_parse_gives_float_past_maxinteger),
        cmocka_unit_test(test_lua_parse_returns_nil_and_reason_when_malformed),
        cmocka_unit_test(test_lua_in_range_excludes_from_and_includes_to),
        cmocka_unit_test(test_lua_malformed_version_raises_error_naming_it),
        cmocka_unit_test(test_lua_non_string_argument_raises),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
