/* test_sha256.c - the digest recorded for each applied script: NIST
 * vectors, any split of the input, and the padding edges. */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FIPS 180-2 appendix B / NIST CSRC example messages. */
static const char msg_448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char msg_896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                              "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

static void digest_to_hex(const unsigned char digest[32], char hex[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* Hashes data fed to update() in pieces of at most `piece` bytes. */
static void hex_in_pieces(const void *data, size_t len, size_t piece, char hex[65])
{
    const unsigned char *p = data;
    unsigned char digest[32];
    mig_sha256 s;
    mig_sha256_init(&s);
    for (size_t off = 0; off < len; off += piece)
        mig_sha256_update(&s, p + off, len - off < piece ? len - off : piece);
    mig_sha256_final(&s, digest);
    digest_to_hex(digest, hex);
}

static void test_empty_input_gives_nist_digest(void **state)
{
    (void)state;
    char hex[65];
    mig_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_abc_gives_nist_digest(void **state)
{
    (void)state;
    char hex[65];
    mig_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_448_bit_message_gives_nist_digest(void **state)
{
    (void)state;
    char hex[65];
    mig_sha256_hex(msg_448, strlen(msg_448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_896_bit_message_gives_nist_digest(void **state)
{
    (void)state;
    char hex[65];
    mig_sha256_hex(msg_896, strlen(msg_896), hex);
    assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_gives_nist_digest(void **state)
{
    (void)state;
    const size_t len = 1000000;
    char *data = malloc(len);
    assert_non_null(data);
    memset(data, 'a', len);
    char one_shot[65], in_odd_pieces[65];
    mig_sha256_hex(data, len, one_shot);
    hex_in_pieces(data, len, 997, in_odd_pieces);
    free(data);
    assert_string_equal(one_shot, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    assert_string_equal(in_odd_pieces, one_shot);
}

static void test_digest_does_not_depend_on_where_input_is_split(void **state)
{
    (void)state;
    const char *want = "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
    size_t len = strlen(msg_896);
    for (size_t cut = 0; cut <= len; cut++) {
        unsigned char digest[32];
        char hex[65];
        mig_sha256 s;
        mig_sha256_init(&s);
        mig_sha256_update(&s, msg_896, cut);
        mig_sha256_update(&s, msg_896 + cut, len - cut);
        mig_sha256_final(&s, digest);
        digest_to_hex(digest, hex);
        if (strcmp(hex, want) != 0)
            fail_msg("split at %zu gives %s", cut, hex);
    }
}

static void test_digest_does_not_depend_on_piece_size(void **state)
{
    (void)state;
    const char *want = "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
    size_t len = strlen(msg_896);
    for (size_t piece = 1; piece <= len; piece++) {
        char hex[65];
        hex_in_pieces(msg_896, len, piece, hex);
        if (strcmp(hex, want) != 0)
            fail_msg("pieces of %zu give %s", piece, hex);
    }
}

/* Lengths where the 0x80 byte and the 8-byte length do or do not fit in the
 * last block; the digests were checked against coreutils sha256sum. */
static void test_padding_edges_give_known_digests(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        const char *hex;
    } cases[] = {
        {55, "595615dbe4f0f407ae397d08b4c2cb870cb9b0e11937416f950c5160acf9c005"},
        {56, "784f623b787495078e93ff28a25b581df0584055a7e71d8cd90c454716b92f51"},
        {63, "5ca3e1ef5207490eac01a795e5cc94d59582a5118bf9534665c8668d87aa647c"},
        {64, "2fcd5a0d60e4c941381fcc4e00a4bf8be422c3ddfafb93c809e8d1e2bfffae8e"},
        {65, "1b3cd1877ab2f2f19f7be001722554f336cb799df0329de0bb4c118dc6abc06d"},
    };
    char alphabet_run[65];
    for (size_t i = 0; i < sizeof alphabet_run; i++)
        alphabet_run[i] = (char)('a' + i % 26);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char one_shot[65], byte_at_a_time[65];
        mig_sha256_hex(alphabet_run, cases[i].len, one_shot);
        hex_in_pieces(alphabet_run, cases[i].len, 1, byte_at_a_time);
        if (strcmp(one_shot, cases[i].hex) != 0)
            fail_msg("length %zu: one-shot gives %s", cases[i].len, one_shot);
        if (strcmp(byte_at_a_time, cases[i].hex) != 0)
            fail_msg("length %zu: byte at a time gives %s", cases[i].len, byte_at_a_time);
    }
}

static void test_empty_update_with_null_data_changes_nothing(void **state)
{
    (void)state;
    unsigned char digest[32];
    char hex[65];
    mig_sha256 s;
    mig_sha256_init(&s);
    mig_sha256_update(&s, "ab", 2);
    mig_sha256_update(&s, NULL, 0);
    mig_sha256_update(&s, "c", 1);
    mig_sha256_final(&s, digest);
    digest_to_hex(digest, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hex_digest_is_lowercase_and_nul_terminated(void **state)
{
    (void)state;
    char hex[66];
    memset(hex, 'X', sizeof hex);
    mig_sha256_hex("abc", 3, hex);
    assert_int_equal(hex[64], '\0');
    assert_int_equal(hex[65], 'X');
    assert_int_equal(strspn(hex, "0123456789abcdef"), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_input_gives_nist_digest),
        cmocka_unit_test(test_abc_gives_nist_digest),
        cmocka_unit_test(test_448_bit_message_gives_nist_digest),
        cmocka_unit_test(test_896_bit_message_gives_nist_digest),
        cmocka_unit_test(test_million_a_gives_nist_digest),
        cmocka_unit_test(test_digest_does_not_depend_on_where_input_is_split),
        cmocka_unit_test(test_digest_does_not_depend_on_piece_size),
        cmocka_unit_test(test_padding_edges_give_known_digests),
        cmocka_unit_test(test_empty_update_with_null_data_changes_nothing),
        cmocka_unit_test(test_hex_digest_is_lowercase_and_nul_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
