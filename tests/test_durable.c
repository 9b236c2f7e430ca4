/* test_durable.c - mig_write_atomic() and friends: a write either fully
 * happens or leaves the old file and no temp behind (SPEC §6). */
#include "internal.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fixture {
    char *dir;
    char *file; /* dir/config.json, not created */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->file = tu_path(f->dir, "config.json");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmtree(f->dir);
    free(f->file);
    free(f->dir);
    free(f);
    return 0;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Runs check() as uid/gid 65534 in a child when root (root bypasses file
 * permissions); as an ordinary user, in this process. */
static bool as_nobody(bool (*check)(void *), void *arg)
{
    if (getuid() != 0)
        return check(arg);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        _exit(check(arg) ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- mig_write_atomic ------------------------------------------------------ */

static void test_write_creates_new_file_with_content(void **state)
{
    fixture *f = *state;
    const char *stage = NULL;
    assert_int_equal(mig_write_atomic(f->file, "{}\n", 3, -1, &stage), 0);
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "{}\n");
    free(content);
    assert_int_equal(tu_count_temps(f->dir), 0);
}

static void test_write_new_file_without_mode_gets_0644_through_umask(void **state)
{
    fixture *f = *state;
    mode_t old = umask(022);
    assert_int_equal(mig_write_atomic(f->file, "a", 1, -1, NULL), 0);
    assert_int_equal(mode_of(f->file), 0644);
    umask(077);
    char *other = tu_path(f->dir, "private");
    assert_int_equal(mig_write_atomic(other, "a", 1, -1, NULL), 0);
    assert_int_equal(mode_of(other), 0600);
    umask(old);
    free(other);
}

static void test_write_keeps_existing_mode(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    assert_int_equal(chmod(f->file, 0600), 0);
    assert_int_equal(mig_write_atomic(f->file, "new", 3, -1, NULL), 0);
    assert_int_equal(mode_of(f->file), 0600);
    assert_int_equal(chmod(f->file, 01751), 0);
    assert_int_equal(mig_write_atomic(f->file, "newer", 5, -1, NULL), 0);
    assert_int_equal(mode_of(f->file), 01751);
    /* every bit but setuid/setgid: no rewrite keeps those (SPEC §5) */
    assert_int_equal(chmod(f->file, 06751), 0);
    assert_int_equal(mig_write_atomic(f->file, "newest", 6, -1, NULL), 0);
    assert_int_equal(mode_of(f->file), 0751);
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "newest");
    free(content);
}

static void test_write_as_root_keeps_the_owner_of_the_file_it_replaces(void **state)
{
    fixture *f = *state;
    if (geteuid() != 0)
        skip(); /* only root can give a file away; anyone else keeps their own */
    tu_write(f->dir, "config.json", "old");
    assert_int_equal(chown(f->file, 65534, 65534), 0);
    assert_int_equal(chmod(f->file, 04600), 0);
    assert_int_equal(mig_write_atomic(f->file, "new", 3, -1, NULL), 0);
    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
    assert_int_equal(st.st_mode & 07777, 0600); /* setuid dropped, as by every rewrite */
    /* a new file is the writer's own */
    char *other = tu_path(f->dir, "fresh");
    assert_int_equal(mig_write_atomic(other, "x", 1, -1, NULL), 0);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(st.st_uid, 0);
    free(other);
}

static void test_write_removes_temps_a_killed_writer_left_beside_its_target(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, ".config.json.tmp-Ab3xY9", "half of an old write");
    tu_write(f->dir, ".config.json.tmp-notours-at-all", "not our pattern");
    tu_write(f->dir, ".other.json.tmp-Zz9Zz9", "another file's leftover");
    assert_int_equal(mig_write_atomic(f->file, "new", 3, -1, NULL), 0);
    assert_false(tu_exists(f->dir, ".config.json.tmp-Ab3xY9"));
    assert_true(tu_exists(f->dir, ".config.json.tmp-notours-at-all"));
    assert_true(tu_exists(f->dir, ".other.json.tmp-Zz9Zz9"));
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "new");
    free(content);
}

static void test_write_applies_explicit_mode_exactly_despite_umask(void **state)
{
    fixture *f = *state;
    mode_t old = umask(077);
    assert_int_equal(mig_write_atomic(f->file, "x", 1, 0664, NULL), 0);
    assert_int_equal(mode_of(f->file), 0664);
    assert_int_equal(mig_write_atomic(f->file, "y", 1, 0640, NULL), 0);
    assert_int_equal(mode_of(f->file), 0640);
    umask(old);
}

static void test_write_of_nothing_leaves_empty_file(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    assert_int_equal(mig_write_atomic(f->file, "", 0, -1, NULL), 0);
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "");
    free(content);
}

static void test_write_with_missing_parent_fails_at_open_without_temp(void **state)
{
    fixture *f = *state;
    char *path = tu_path(f->dir, "missing/config.json");
    const char *stage = NULL;
    assert_int_equal(mig_write_atomic(path, "x", 1, -1, &stage), ENOENT);
    assert_string_equal(stage, "open");
    assert_int_equal(tu_count_entries(f->dir), 0);
    free(path);
}

static void test_write_onto_directory_fails_and_keeps_it(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json/inner", "keep");
    const char *stage = NULL;
    assert_int_equal(mig_write_atomic(f->file, "x", 1, 0600, &stage), EISDIR);
    assert_string_equal(stage, "open");
    char *inner = tu_read(f->dir, "config.json/inner");
    assert_string_equal(inner, "keep");
    free(inner);
    assert_int_equal(tu_count_temps(f->dir), 0);
}

/* What the seam hook saw, for the test that set it. */
static struct {
    const char *dir, *file;
    int calls, temps;
    char *target, *temp_content;
    bool replace_target_by_dir;
} seen;

static char *first_temp_content(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *content = NULL;
    struct dirent *e;
    while (content == NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp-") != NULL)
            content = tu_read(dir, e->d_name);
    closedir(d);
    return content;
}

static void observe_before_rename(const char *point)
{
    if (strcmp(point, "write_atomic:before-rename") != 0)
        return;
    seen.calls++;
    seen.temps = tu_count_temps(seen.dir);
    seen.target = tu_read(seen.file, NULL);
    seen.temp_content = first_temp_content(seen.dir);
    if (seen.replace_target_by_dir) {
        assert_int_equal(unlink(seen.file), 0);
        assert_int_equal(mkdir(seen.file, 0755), 0);
        tu_write(seen.file, "occupied", "x");
    }
}

static void test_seam_fires_after_fsync_before_rename(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    memset(&seen, 0, sizeof seen);
    seen.dir = f->dir;
    seen.file = f->file;
    tu_seam_hook = observe_before_rename;
    int rc = mig_write_atomic(f->file, "new", 3, -1, NULL);
    tu_seam_hook = NULL;
    assert_int_equal(rc, 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.temps, 1);
    assert_string_equal(seen.temp_content, "new"); /* complete before the rename */
    assert_string_equal(seen.target, "old");        /* not yet replaced */
    char *after = tu_read(f->file, NULL);
    assert_string_equal(after, "new");
    free(after);
    assert_int_equal(tu_count_temps(f->dir), 0);
    free(seen.target);
    free(seen.temp_content);
}

static void test_failed_rename_removes_temp(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    memset(&seen, 0, sizeof seen);
    seen.dir = f->dir;
    seen.file = f->file;
    seen.replace_target_by_dir = true;
    tu_seam_hook = observe_before_rename;
    const char *stage = NULL;
    int rc = mig_write_atomic(f->file, "new", 3, -1, &stage);
    tu_seam_hook = NULL;
    assert_int_not_equal(rc, 0);
    assert_string_equal(stage, "rename");
    assert_int_equal(tu_count_temps(f->dir), 0);
    assert_true(tu_exists(f->file, "occupied"));
    free(seen.target);
    free(seen.temp_content);
}

/* A write that fails half-way (the file size limit stands in for a full
 * disk) must keep the old file whole and remove the partial temp. */
static void test_failed_write_keeps_old_content_and_removes_temp(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
            _exit(3);
        static char big[64 * 1024];
        const char *stage = NULL;
        int rc = mig_write_atomic(f->file, big, sizeof big, -1, &stage);
        _exit(rc == EFBIG && stage != NULL && strcmp(stage, "write") == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "old");
    free(content);
    assert_int_equal(tu_count_temps(f->dir), 0);
}

static bool write_is_denied(void *arg)
{
    const fixture *f = arg;
    const char *stage = NULL;
    return mig_write_atomic(f->file, "x", 1, -1, &stage) == EACCES &&
           strcmp(stage, "open") == 0;
}

static void test_write_in_unwritable_directory_is_denied(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "old");
    assert_int_equal(chmod(f->dir, 0555), 0);
    assert_true(as_nobody(write_is_denied, f));
    assert_int_equal(chmod(f->dir, 0700), 0);
    char *content = tu_read(f->file, NULL);
    assert_string_equal(content, "old");
    free(content);
    assert_int_equal(tu_count_temps(f->dir), 0);
}

static void test_write_to_symlink_path_takes_mode_of_its_target(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "real", "old");
    char *real = tu_path(f->dir, "real");
    assert_int_equal(chmod(real, 0600), 0);
    assert_int_equal(symlink("real", f->file), 0);
    assert_int_equal(mig_write_atomic(f->file, "new", 3, -1, NULL), 0);
    assert_int_equal(mode_of(f->file), 0600);
    free(real);
}

static void test_write_leaves_no_descriptor_open(void **state)
{
    fixture *f = *state;
    char *missing = tu_path(f->dir, "missing/x");
    int before = tu_count_fds();
    for (int i = 0; i < 200; i++) {
        assert_int_equal(mig_write_atomic(f->file, "x", 1, -1, NULL), 0);
        assert_int_equal(mig_write_atomic(missing, "x", 1, -1, NULL), ENOENT);
        assert_int_equal(mig_write_atomic(f->dir, "x", 1, -1, NULL), EISDIR);
    }
    assert_int_equal(tu_count_fds(), before);
    free(missing);
}

/* ---- mig_fsync_parent ------------------------------------------------------ */

static void test_fsync_parent_of_existing_and_missing_directory(void **state)
{
    fixture *f = *state;
    assert_int_equal(mig_fsync_parent(f->file), 0);
    char *missing = tu_path(f->dir, "missing/file");
    assert_int_equal(mig_fsync_parent(missing), ENOENT);
    assert_int_equal(mig_fsync_parent("/"), 0);
    free(missing);
}

/* ---- mig_read_file --------------------------------------------------------- */

static void test_read_file_returns_content_nul_terminated(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "{\"a\": 1}");
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mig_read_file(f->file, 1024, &buf, &len), 0);
    assert_int_equal(len, 8);
    assert_string_equal(buf, "{\"a\": 1}");
    free(buf);
}

static void test_read_file_of_empty_file(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "");
    char *buf = NULL;
    size_t len = 99;
    assert_int_equal(mig_read_file(f->file, 1024, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
}

static void test_read_file_refuses_more_than_max(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "config.json", "0123456789");
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mig_read_file(f->file, 9, &buf, &len), EFBIG);
    assert_null(buf);
    assert_int_equal(mig_read_file(f->file, 10, &buf, &len), 0);
    assert_int_equal(len, 10);
    free(buf);
}

static void test_read_file_refuses_what_is_not_a_regular_file(void **state)
{
    fixture *f = *state;
    char *buf = NULL;
    size_t len;
    assert_int_equal(mig_read_file(f->file, 10, &buf, &len), ENOENT);
    assert_int_equal(mig_read_file(f->dir, 10, &buf, &len), EISDIR);
    assert_int_equal(mkfifo(f->file, 0600), 0);
    assert_int_equal(mig_read_file(f->file, 10, &buf, &len), EINVAL); /* and no hang */
    assert_null(buf);
}

/* ---- mig_mkdir_parents ----------------------------------------------------- */

static void test_mkdir_parents_creates_every_level_with_mode(void **state)
{
    fixture *f = *state;
    char *deep = tu_path(f->dir, "a/b/c/");
    mode_t old = umask(0);
    assert_int_equal(mig_mkdir_parents(deep, 0700), 0);
    umask(old);
    char *a = tu_path(f->dir, "a"), *c = tu_path(f->dir, "a/b/c");
    assert_int_equal(mode_of(a), 0700);
    assert_int_equal(mode_of(c), 0700);
    assert_int_equal(mig_mkdir_parents(deep, 0700), 0); /* already there */
    free(deep);
    free(a);
    free(c);
}

static void test_mkdir_parents_with_file_in_the_way_is_enotdir(void **state)
{
    fixture *f = *state;
    tu_write(f->dir, "file", "x");
    char *final = tu_path(f->dir, "file"), *below = tu_path(f->dir, "file/sub/dir");
    assert_int_equal(mig_mkdir_parents(final, 0755), ENOTDIR);
    assert_int_equal(mig_mkdir_parents(below, 0755), ENOTDIR);
    free(final);
    free(below);
}

static void test_mkdir_parents_through_symlinked_directory(void **state)
{
    fixture *f = *state;
    char *real = tu_path(f->dir, "real"), *link = tu_path(f->dir, "link");
    char *below = tu_path(f->dir, "link/new");
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink("real", link), 0);
    assert_int_equal(mig_mkdir_parents(link, 0755), 0);
    assert_int_equal(mig_mkdir_parents(below, 0755), 0);
    assert_true(tu_exists(f->dir, "real/new"));
    free(real);
    free(link);
    free(below);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_creates_new_file_with_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_new_file_without_mode_gets_0644_through_umask,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_keeps_existing_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_write_removes_temps_a_killed_writer_left_beside_its_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_as_root_keeps_the_owner_of_the_file_it_replaces,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_applies_explicit_mode_exactly_despite_umask,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_of_nothing_leaves_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_with_missing_parent_fails_at_open_without_temp,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_onto_directory_fails_and_keeps_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_seam_fires_after_fsync_before_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_rename_removes_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_old_content_and_removes_temp, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_in_unwritable_directory_is_denied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_to_symlink_path_takes_mode_of_its_target, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_leaves_no_descriptor_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_parent_of_existing_and_missing_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_file_returns_content_nul_terminated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_file_of_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_refuses_more_than_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_refuses_what_is_not_a_regular_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parents_creates_every_level_with_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parents_with_file_in_the_way_is_enotdir, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parents_through_symlinked_directory, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
