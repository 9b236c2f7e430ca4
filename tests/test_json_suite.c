/* test_json_suite.c - json.decode against every category of JSONTestSuite
 * (github.com/nst/JSONTestSuite): y_ texts must decode (to the right
 * value), n_ texts must be refused, and i_ texts get the answer SPEC §5
 * chose. The cases are our own, one or more per category of the suite. */
#include "testutil.h"

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <string.h>

typedef struct json_case {
    const char *name; /* the suite's category */
    const char *text;
    size_t len;       /* 0: strlen(text) */
    const char *check; /* y_: Lua expression over v that must be true; NULL: refused */
} json_case;

#define Y(name, text, check) { name, text, 0, check }
#define N(name, text) { name, text, 0, NULL }

static const json_case cases[] = {
    /* ---- y_: must be accepted ---- */
    Y("y_array_empty", "[]", "#v == 0"),
    Y("y_array_empty-string", "[\"\"]", "v[1] == ''"),
    Y("y_array_arraysWithSpaces", "[[]   ]", "#v[1] == 0"),
    Y("y_array_ending_with_newline", "[\"a\"]\n", "v[1] == 'a'"),
    Y("y_array_false", "[false]", "v[1] == false"),
    Y("y_array_heterogeneous", "[null, 1, \"1\", {}]", "v[1] == json.null and v[2] == 1 and v[3] == '1'"),
    Y("y_array_null", "[null]", "v[1] == json.null"),
    Y("y_array_with_leading_space", " [1]", "v[1] == 1"),
    Y("y_array_with_several_null", "[1,null,null,null,2]", "v[5] == 2"),
    Y("y_array_with_trailing_space", "[2] ", "v[1] == 2"),
    Y("y_number", "[123e65]", "v[1] == 123e65"),
    Y("y_number_0e+1", "[0e+1]", "v[1] == 0"),
    Y("y_number_0e1", "[0e1]", "v[1] == 0"),
    Y("y_number_after_space", "[ 4]", "v[1] == 4"),
    Y("y_number_double_close_to_zero", "[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]",
      "v[1] < 0 and v[1] > -1e-77"),
    Y("y_number_int_with_exp", "[20e1]", "v[1] == 200"),
    Y("y_number_minus_zero", "[-0]", "v[1] == 0"),
    Y("y_number_negative_int", "[-123]", "v[1] == -123"),
    Y("y_number_negative_one", "[-1]", "v[1] == -1"),
    Y("y_number_negative_zero", "[-0.0]", "v[1] == 0"),
    Y("y_number_real_capital_e", "[1E22]", "v[1] == 1e22"),
    Y("y_number_real_capital_e_neg_exp", "[1E-2]", "v[1] == 0.01"),
    Y("y_number_real_capital_e_pos_exp", "[1E+2]", "v[1] == 100"),
    Y("y_number_real_exponent", "[123e45]", "v[1] == 123e45"),
    Y("y_number_real_fraction_exponent", "[123.456e78]", "v[1] == 123.456e78"),
    Y("y_number_real_neg_exp", "[1e-2]", "v[1] == 0.01"),
    Y("y_number_real_pos_exponent", "[1e+2]", "v[1] == 100"),
    Y("y_number_simple_int", "[123]", "v[1] == 123 and math.type(v[1]) == 'integer'"),
    Y("y_number_simple_real", "[123.456789]", "v[1] == 123.456789"),
    Y("y_number (long, 70 characters)",
      "[1.000000000000000000000000000000000000000000000000000000000000000000001]", "v[1] == 1.0"),
    Y("y_number (long exponent)", "[1e00000000000000000000000000000000000000000000000000000000000000000002]",
      "v[1] == 100"),
    Y("y_object", "{\"asd\":\"sdf\", \"dfg\":\"fgh\"}", "v.asd == 'sdf' and v.dfg == 'fgh'"),
    Y("y_object_basic", "{\"asd\":\"sdf\"}", "v.asd == 'sdf'"),
    Y("y_object_duplicated_key", "{\"a\":\"b\",\"a\":\"c\"}", "v.a == 'c'"),
    Y("y_object_duplicated_key_and_value", "{\"a\":\"b\",\"a\":\"b\"}", "v.a == 'b'"),
    Y("y_object_empty", "{}", "next(v) == nil"),
    Y("y_object_empty_key", "{\"\":0}", "v[''] == 0"),
    Y("y_object_escaped_null_in_key", "{\"foo\\u0000bar\": 42}", "v['foo\\0bar'] == 42"),
    Y("y_object_extreme_numbers", "{ \"min\": -1.0e+28, \"max\": 1.0e+28 }", "v.min == -1e28 and v.max == 1e28"),
    Y("y_object_long_strings", "{\"x\":[{\"id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}], \"id\": \"x\"}",
      "v.id == 'x' and #v.x[1].id == 40"),
    Y("y_object_simple", "{\"a\":[]}", "#v.a == 0"),
    Y("y_object_string_unicode", "{\"title\":\"\\u041f\\u043e\" }", "v.title == '\\u{41f}\\u{43e}'"),
    Y("y_object_with_newlines", "{\n\"a\": \"b\"\n}", "v.a == 'b'"),
    Y("y_string_1_2_3_bytes_UTF-8_sequences", "[\"\\u0060\\u012a\\u12AB\"]", "v[1] == '`\\u{12a}\\u{12ab}'"),
    Y("y_string_accepted_surrogate_pair", "[\"\\uD801\\udc37\"]", "v[1] == '\\u{10437}'"),
    Y("y_string_allowed_escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "v[1] == '\"\\\\/\\b\\f\\n\\r\\t'"),
    Y("y_string_backslash_and_u_escaped_zero", "[\"\\\\u0000\"]", "v[1] == '\\\\u0000'"),
    Y("y_string_comments", "[\"a/*b*/c/*d//e\"]", "v[1] == 'a/*b*/c/*d//e'"),
    Y("y_string_escaped_control_character", "[\"\\u0012\"]", "v[1] == '\\x12'"),
    Y("y_string_in_array_with_leading_space", "[ \"asd\"]", "v[1] == 'asd'"),
    Y("y_string_nbsp_uescaped", "[\"new\\u00A0line\"]", "v[1] == 'new\\u{a0}line'"),
    Y("y_string_nonCharacterInUTF-8_U+FFFF", "[\"\xef\xbf\xbf\"]", "v[1] == '\\u{ffff}'"),
    Y("y_string_null_escape", "[\"\\u0000\"]", "v[1] == '\\0' and #v[1] == 1"),
    Y("y_string_null_escape (with text and numbers around)", "[\"a\\u0000\", 1.5, {\"k\": \"\\u0000b\"}, 7]",
      "v[1] == 'a\\0' and v[2] == 1.5 and v[3].k == '\\0b' and v[4] == 7"),
    Y("y_string_one-byte-utf-8", "[\"\\u002c\"]", "v[1] == ','"),
    Y("y_string_pi", "[\"\xcf\x80\"]", "v[1] == '\\u{3c0}'"),
    Y("y_string_surrogates_U+1D11E_MUSICAL_SYMBOL_G_CLEF", "[\"\\uD834\\uDd1e\"]", "v[1] == '\\u{1d11e}'"),
    Y("y_string_unicode_U+10FFFE_nonchar", "[\"\\uDBFF\\uDFFE\"]", "v[1] == '\\u{10fffe}'"),
    Y("y_string_utf8", "[\"\xe2\x82\xac\xf0\x9d\x84\x9e\"]", "v[1] == '\\u{20ac}\\u{1d11e}'"),
    Y("y_string_with_del_character", "[\"a\x7f" "a\"]", "v[1] == 'a\\127a'"),
    Y("y_structure_lonely_false", "false", "v == false"),
    Y("y_structure_lonely_int", "42", "v == 42"),
    Y("y_structure_lonely_negative_real", "-0.1", "v == -0.1"),
    Y("y_structure_lonely_null", "null", "v == json.null"),
    Y("y_structure_lonely_string", "\"asd\"", "v == 'asd'"),
    Y("y_structure_lonely_true", "true", "v == true"),
    Y("y_structure_string_empty", "\"\"", "v == ''"),
    Y("y_structure_trailing_newline", "[\"a\"]\n", "v[1] == 'a'"),
    Y("y_structure_true_in_array", "[true]", "v[1] == true"),
    Y("y_structure_whitespace_array", " [] ", "#v == 0"),
    /* ---- n_: must be refused ---- */
    N("n_array_1_true_without_comma", "[1 true]"),
    N("n_array_colon_instead_of_comma", "[\"\": 1]"),
    N("n_array_comma_and_number", "[,1]"),
    N("n_array_double_comma", "[1,,2]"),
    N("n_array_extra_close", "[\"x\"]]"),
    N("n_array_extra_comma", "[\"\",]"),
    N("n_array_incomplete", "[\"x\""),
    N("n_array_inner_array_no_comma", "[3[4]]"),
    N("n_array_invalid_utf8", "[\xff]"),
    N("n_array_just_comma", "[,]"),
    N("n_array_just_minus", "[-]"),
    N("n_array_missing_value", "[   , \"\"]"),
    N("n_array_newlines_unclosed", "[\"a\",\n4\n,1,"),
    N("n_array_star_inside", "[*]"),
    N("n_array_unclosed", "[\"\""),
    N("n_array_unclosed_with_object_inside", "[{}"),
    N("n_incomplete_false", "[fals]"),
    N("n_incomplete_null", "[nul]"),
    N("n_incomplete_true", "[tru]"),
    N("n_multidigit_number_then_00", "123\0"),
    N("n_number_++", "[++1234]"),
    N("n_number_+1", "[+1]"),
    N("n_number_+Inf", "[+Inf]"),
    N("n_number_-01", "[-01]"),
    N("n_number_-1.0.", "[-1.0.]"),
    N("n_number_-NaN", "[-NaN]"),
    N("n_number_.-1", "[.-1]"),
    N("n_number_.2e-3", "[.2e-3]"),
    N("n_number_0.1.2", "[0.1.2]"),
    N("n_number_0.3e+", "[0.3e+]"),
    N("n_number_0.e1", "[0.e1]"),
    N("n_number_0_capital_E+", "[0E+]"),
    N("n_number_1.0e-", "[1.0e-]"),
    N("n_number_1_000", "[1 000.0]"),
    N("n_number_2.e3", "[2.e3]"),
    N("n_number_9.e+", "[9.e+]"),
    N("n_number_Inf", "[Inf]"),
    N("n_number_NaN", "[NaN]"),
    N("n_number_U+FF11_fullwidth_digit_one", "[\xef\xbc\x91]"),
    N("n_number_expression", "[1+2]"),
    N("n_number_hex_1_digit", "[0x1]"),
    N("n_number_infinity", "[Infinity]"),
    N("n_number_invalid-negative-real", "[-123.123foo]"),
    N("n_number_leading_zero (long)", "[0000000000000000000000000000000000000000000000000000000000000000000001.5]"),
    N("n_number_minus_space_1", "[- 1]"),
    N("n_number_neg_with_garbage_at_end", "[-1x]"),
    N("n_number_real_without_fractional_part", "[1.]"),
    N("n_number_starting_with_dot", "[.123]"),
    N("n_number_with_alpha", "[1.2a-3]"),
    N("n_object_bad_value", "[\"x\", truth]"),
    N("n_object_comma_instead_of_colon", "{\"x\", null}"),
    N("n_object_double_colon", "{\"x\"::\"b\"}"),
    N("n_object_garbage_at_end", "{\"a\":\"a\" 123}"),
    N("n_object_key_with_single_quotes", "{key: 'value'}"),
    N("n_object_missing_colon", "{\"a\" b}"),
    N("n_object_missing_key", "{:\"b\"}"),
    N("n_object_missing_value", "{\"a\":"),
    N("n_object_no-colon", "{\"a\""),
    N("n_object_non_string_key", "{1:1}"),
    N("n_object_single_quote", "{'a':0}"),
    N("n_object_trailing_comma", "{\"id\":0,}"),
    N("n_object_trailing_comment", "{\"a\":\"b\"}/**/"),
    N("n_object_two_commas_in_a_row", "{\"a\":\"b\",,\"c\":\"d\"}"),
    N("n_object_unquoted_key", "{a: \"b\"}"),
    N("n_object_with_trailing_garbage", "{\"a\": true} \"x\""),
    N("n_single_space", " "),
    N("n_string_1_surrogate_then_escape", "[\"\\uD800\\\"]"),
    N("n_string_accentuated_char_no_quotes", "[\xc3\xa9]"),
    N("n_string_backslash_00", "[\"\\\0\"]"),
    N("n_string_escape_x", "[\"\\x00\"]"),
    N("n_string_escaped_emoji", "[\"\\\xf0\x9f\x8c\x80\"]"),
    N("n_string_incomplete_escape", "[\"\\\"]"),
    N("n_string_incomplete_escaped_character", "[\"\\u00A\"]"),
    N("n_string_invalid_backslash_esc", "[\"\\a\"]"),
    N("n_string_invalid_unicode_escape", "[\"\\uqqqq\"]"),
    N("n_string_invalid_utf8_after_escape", "[\"\\\xe5\"]"),
    N("n_string_single_quote", "['single quote']"),
    N("n_string_start_escape_unclosed", "[\"\\"),
    N("n_string_unescaped_ctrl_char", "[\"a\x01" "a\"]"),
    N("n_string_unescaped_newline", "[\"new\nline\"]"),
    N("n_string_unescaped_tab", "[\"\t\"]"),
    N("n_string_with_trailing_garbage", "\"\"x"),
    N("n_structure_angle_bracket_null", "[<null>]"),
    N("n_structure_array_trailing_garbage", "[1]x"),
    N("n_structure_array_with_unclosed_string", "[\"asd]"),
    N("n_structure_capitalized_True", "[True]"),
    N("n_structure_close_unopened_array", "1]"),
    N("n_structure_comma_instead_of_closing_brace", "{\"x\": true,"),
    N("n_structure_double_array", "[][]"),
    N("n_structure_end_array", "]"),
    N("n_structure_lone-open-bracket", "["),
    N("n_structure_no_data", ""),
    N("n_structure_null-byte-outside-string", "[\0]"),
    N("n_structure_object_followed_by_closing_object", "{}}"),
    N("n_structure_open_object_close_array", "{]"),
    N("n_structure_single_star", "*"),
    N("n_structure_trailing_#", "{\"a\":\"b\"}#{}"),
    N("n_structure_U+2060_word_joined", "[\xe2\x81\xa0]"),
    N("n_structure_uescaped_LF_before_string", "[\\u000A\"\"]"),
    N("n_structure_unclosed_array_partial_null", "[ false, nul"),
    N("n_structure_whitespace_formfeed", "[\f]"),
    /* ---- i_: implementation-defined; what SPEC §5 chose ---- */
    N("i_number_huge_exp (too large for a double)", "[1.5e99999]"),
    Y("i_number_neg_int_huge_exp (underflows to zero)", "[1e-99999]", "v[1] == 0"),
    N("i_number_too_big_pos_int (outside 2^53)", "[100000000000000000000]"),
    N("i_number_very_big_negative_int", "[-237462374673276894279832749832423479823246327846]"),
    N("i_string_1st_surrogate_but_2nd_missing", "[\"\\uDADA\"]"),
    N("i_string_incomplete_surrogate_and_escape_valid", "[\"\\uD800\\n\"]"),
    N("i_string_inverted_surrogates_U+1D11E", "[\"\\uDd1e\\uD834\"]"),
    N("i_string_invalid_utf-8 (overlong)", "[\"\xc0\xaf\"]"),
    N("i_string_UTF-16LE_with_BOM", "\xff\xfe[\0\"\0]\0"),
    N("i_string_UTF8_surrogate_U+D800", "[\"\xed\xa0\x80\"]"),
    Y("i_structure_UTF-8_BOM_empty_object", "\xef\xbb\xbf{}", "next(v) == nil"),
};

/* n_ cases holding a NUL byte: their length, counted by hand. */
static size_t case_len(const json_case *c)
{
    if (strcmp(c->name, "n_multidigit_number_then_00") == 0)
        return 4;
    if (strcmp(c->name, "n_string_backslash_00") == 0)
        return 6;
    if (strcmp(c->name, "n_structure_null-byte-outside-string") == 0)
        return 3;
    if (strcmp(c->name, "i_string_UTF-16LE_with_BOM") == 0)
        return 8;
    return c->len != 0 ? c->len : strlen(c->text);
}

static void test_suite_categories(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_setglobal(L, "json");
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const json_case *c = &cases[i];
        char code[1024];
        snprintf(code, sizeof code, "local v = json.decode(...)\nreturn %s", c->check ? c->check : "true");
        lua_settop(L, 0);
        assert_int_equal(luaL_loadstring(L, code), LUA_OK);
        lua_pushlstring(L, c->text, case_len(c));
        int rc = lua_pcall(L, 1, 1, 0);
        if (c->check != NULL && rc != LUA_OK) {
            print_error("%s: refused: %s\n", c->name, lua_tostring(L, -1));
            failures++;
        } else if (c->check != NULL && !lua_toboolean(L, -1)) {
            print_error("%s: decoded to the wrong value (%s)\n", c->name, c->check);
            failures++;
        } else if (c->check == NULL && rc == LUA_OK) {
            print_error("%s: accepted, must be refused\n", c->name);
            failures++;
        } else if (c->check == NULL && strncmp(lua_tostring(L, -1), "json.decode: ", 13) != 0 &&
                   strstr(lua_tostring(L, -1), "json.decode: ") == NULL) {
            print_error("%s: refused without saying why: %s\n", c->name, lua_tostring(L, -1));
            failures++;
        }
    }
    lua_close(L);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_categories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
