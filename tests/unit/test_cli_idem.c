/* txupload's idempotency keys, content types and directory expansion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_files.h"
#include "cli/cli_idem.h"
#include "common/tx_id.h"

static void test_derive(void **state)
{
    char sha[TX_SHA256_HEX_LEN + 1];
    char k1[CLI_IDEM_KEY_MAX + 1];
    char k2[CLI_IDEM_KEY_MAX + 1];
    char k3[CLI_IDEM_KEY_MAX + 1];

    (void) state;
    tx_sha256_hex("abc", 3, sha);
    assert_int_equal(cli_idem_key_derive(sha, NULL, NULL, k1, sizeof(k1)), 0);
    assert_string_equal(k1,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* The same bytes always give the same key; other bytes another one. */
    assert_int_equal(cli_idem_key_derive(sha, NULL, NULL, k2, sizeof(k2)), 0);
    assert_string_equal(k1, k2);
    tx_sha256_hex("abd", 3, sha);
    assert_int_equal(cli_idem_key_derive(sha, NULL, NULL, k3, sizeof(k3)), 0);
    assert_string_not_equal(k1, k3);
    assert_true(cli_idem_key_valid(k1));

    /* --force: a suffix makes it a new key, still valid. */
    tx_sha256_hex("abc", 3, sha);
    assert_int_equal(cli_idem_key_derive(sha, NULL, "0123456789abcdef", k2, sizeof(k2)), 0);
    assert_string_equal(k2,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                        ":force-0123456789abcdef");
    assert_true(cli_idem_key_valid(k2));

    /* An explicit key wins over the content. */
    assert_int_equal(cli_idem_key_derive(sha, "batch-42", NULL, k3, sizeof(k3)), 0);
    assert_string_equal(k3, "batch-42");
    assert_int_equal(cli_idem_key_derive(sha, "batch-42", "ff", k3, sizeof(k3)), 0);
    assert_string_equal(k3, "batch-42:force-ff");
}

static void test_derive_errors(void **state)
{
    char k[CLI_IDEM_KEY_MAX + 1];
    char small[20];
    char longkey[CLI_IDEM_KEY_MAX + 1];
    char sha[TX_SHA256_HEX_LEN + 1];

    (void) state;
    assert_int_equal(cli_idem_key_derive(NULL, NULL, NULL, k, sizeof(k)), TX_EINVAL);
    assert_int_equal(cli_idem_key_derive("abc", NULL, NULL, k, sizeof(k)), TX_EINVAL);
    assert_int_equal(cli_idem_key_derive("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61"
                                         "F20015AD",
                                         NULL, NULL, k, sizeof(k)),
                     TX_EINVAL);
    tx_sha256_hex("abc", 3, sha);
    assert_int_equal(cli_idem_key_derive(sha, NULL, NULL, small, sizeof(small)), TX_EINVAL);
    assert_string_equal(small, "");
    memset(longkey, 'a', CLI_IDEM_KEY_MAX);
    longkey[CLI_IDEM_KEY_MAX] = '\0';
    assert_true(cli_idem_key_valid(longkey));
    /* A maximal explicit key cannot take a --force suffix. */
    assert_int_equal(cli_idem_key_derive(sha, longkey, "ff", k, sizeof(k)), TX_EINVAL);
    assert_int_equal(cli_idem_key_derive(sha, "with space", NULL, k, sizeof(k)), TX_EINVAL);
}

static void test_valid(void **state)
{
    (void) state;
    assert_true(cli_idem_key_valid("a"));
    assert_true(cli_idem_key_valid("sha256:abc~!#$%&'()*+,-./:;<=>?@[]^_`{|}"));
    assert_false(cli_idem_key_valid(""));
    assert_false(cli_idem_key_valid(NULL));
    assert_false(cli_idem_key_valid("a b"));
    assert_false(cli_idem_key_valid("a\"b"));
    assert_false(cli_idem_key_valid("a\\b"));
    assert_false(cli_idem_key_valid("a\tb"));
    assert_false(cli_idem_key_valid("caf\xc3\xa9"));
}

static void test_content_type(void **state)
{
    (void) state;
    assert_string_equal(cli_content_type_for("a.ndjson"), "application/x-ndjson");
    assert_string_equal(cli_content_type_for("dir/A.NDJSON"), "application/x-ndjson");
    assert_string_equal(cli_content_type_for("a.json"), "application/json");
    assert_string_equal(cli_content_type_for("a.txt"), "application/json");
    assert_string_equal(cli_content_type_for("-"), "application/json");
    assert_string_equal(cli_content_type_for(".ndjson"), "application/json");
    assert_true(cli_name_is_upload("Dados.json"));
    assert_true(cli_name_is_upload("x.NDJSON"));
    assert_false(cli_name_is_upload(".hidden.json"));
    assert_false(cli_name_is_upload("notes.txt"));
    assert_false(cli_name_is_upload("json"));
    assert_false(cli_name_is_upload("a.json~"));
}

static void touch(const char *dir, const char *name)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[]", f);
    fclose(f);
}

static void test_expand(void **state)
{
    char dir[] = "/tmp/test_cli_files.XXXXXX";
    char sub[600];
    char file[600];
    char *inputs[3];
    struct cli_filelist l = { 0 };
    struct tx_err err = { 0 };

    (void) state;
    assert_non_null(mkdtemp(dir));
    touch(dir, "b.json");
    touch(dir, "a.ndjson");
    touch(dir, "B.json");
    touch(dir, "c.txt");
    touch(dir, ".h.json");
    snprintf(sub, sizeof(sub), "%s/d.json", dir); /* a directory named like a file: skipped */
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof(file), "%s/b.json", dir);

    inputs[0] = dir;
    inputs[1] = "-";
    inputs[2] = file;
    assert_int_equal(cli_files_expand(inputs, 3, &l, &err), 0);
    assert_int_equal(l.n, 5);
    /* Byte order: upper case first. */
    assert_non_null(strstr(l.v[0].path, "/B.json"));
    assert_non_null(strstr(l.v[1].path, "/a.ndjson"));
    assert_non_null(strstr(l.v[2].path, "/b.json"));
    assert_int_equal(l.v[2].size, 2);
    assert_string_equal(l.v[3].path, "-");
    assert_string_equal(l.v[3].display, "<stdin>");
    assert_int_equal(l.v[3].size, -1);
    assert_string_equal(l.v[4].path, file);
    cli_files_cleanup(&l);

    /* Missing input, empty directory. */
    inputs[0] = "/nonexistent/x.json";
    assert_int_equal(cli_files_expand(inputs, 1, &l, &err), TX_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/x.json"));
    cli_files_cleanup(&l);
    inputs[0] = sub;
    assert_int_equal(cli_files_expand(inputs, 1, &l, &err), TX_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no *.json"));
    cli_files_cleanup(&l);
    inputs[0] = "/dev/null";
    assert_int_equal(cli_files_expand(inputs, 1, &l, &err), TX_EINVAL);
    cli_files_cleanup(&l);

    rmdir(sub);
    remove(file);
    snprintf(file, sizeof(file), "%s/B.json", dir);
    remove(file);
    snprintf(file, sizeof(file), "%s/a.ndjson", dir);
    remove(file);
    snprintf(file, sizeof(file), "%s/c.txt", dir);
    remove(file);
    snprintf(file, sizeof(file), "%s/.h.json", dir);
    remove(file);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive), cmocka_unit_test(test_derive_errors),
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_expand),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
