/* Unit tests of devices: the devices_file of a LoRaWAN input (SPEC §9) and its lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"

/* A fresh temporary directory per test, removed with its files afterwards. */
typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/parkd-devices-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/devices.csv", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    unlink(f->path);
    unlink(fifo);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

static dev_map *load_ok(const fixture *f, const char *text)
{
    write_file(f->path, text);
    dev_map *m = NULL;
    char *errors = NULL;
    if (dev_load(f->path, &m, &errors) != 0)
        fail_msg("devices file refused:\n%s", errors);
    assert_null(errors);
    return m;
}

/* Loads TEXT, which must fail; returns the errors with PATH replaced by "F" (caller frees). */
static char *load_fail(const fixture *f, const char *text)
{
    write_file(f->path, text);
    dev_map *m = (dev_map *)1;
    char *errors = NULL;
    assert_int_equal(dev_load(f->path, &m, &errors), -1);
    assert_null(m);
    assert_non_null(errors);
    size_t plen = strlen(f->path);
    char *out = malloc(strlen(errors) + 1), *o = out;
    for (const char *p = errors; *p;) {
        if (!strncmp(p, f->path, plen)) {
            *o++ = 'F';
            p += plen;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    free(errors);
    return out;
}

static void assert_maps(const dev_map *m, const char *id, const char *eui, const char *lot,
                        const char *bay)
{
    const dev_entry *e = dev_find(m, id, eui);
    if (!e)
        fail_msg("device %s/%s not found", id ? id : "-", eui ? eui : "-");
    assert_string_equal(e->lot, lot);
    assert_string_equal(e->bay, bay);
}

static void test_load_and_find(void **state)
{
    fixture *f = *state;
    dev_map *m = load_ok(f,
        "# device,lot,bay\n"
        "\n"
        "dev1,lot-a,1\n"
        "  0004a30b001c0530 ,\tlot-a , 2  \r\n"    /* spaces, a tab and CRLF trimmed */
        "   # an indented comment\n"
        "A84041000181C7A1,lot_b,B.07\n"
        "eui-70b3d57ed005b89a,lot_b,B.08");          /* no final newline */
    assert_int_equal(dev_count(m), 4);
    assert_maps(m, "dev1", NULL, "lot-a", "1");
    assert_maps(m, NULL, "0004A30B001C0530", "lot-a", "2");   /* listed lower, looked up upper */
    assert_maps(m, NULL, "a84041000181c7a1", "lot_b", "B.07"); /* listed upper, looked up lower */
    assert_maps(m, "eui-70b3d57ed005b89a", "", "lot_b", "B.08");
    /* DevEUI first, then device id */
    assert_maps(m, "dev1", "0004A30B001C0530", "lot-a", "2");
    assert_maps(m, "dev1", "FFFFFFFFFFFFFFFF", "lot-a", "1");
    const dev_entry *e = dev_find(m, NULL, "0004a30b001c0530");
    assert_string_equal(e->device, "0004A30B001C0530");
    assert_int_equal(e->line, 4);
    /* a device id that is 16 hex digits is a DevEUI for the map too, in either field */
    assert_maps(m, "0004a30b001c0530", NULL, "lot-a", "2");
    assert_null(dev_find(m, "DEV1", NULL));   /* ids are case-sensitive */
    assert_null(dev_find(m, "nobody", "0000000000000000"));
    assert_null(dev_find(m, NULL, NULL));
    assert_null(dev_find(m, "", ""));
    dev_free(m);
    assert_null(dev_find(NULL, "dev1", NULL));
    assert_int_equal(dev_count(NULL), 0);
    dev_free(NULL);
}

static void test_empty_file(void **state)
{
    fixture *f = *state;
    dev_map *m = load_ok(f, "");
    assert_int_equal(dev_count(m), 0);
    assert_null(dev_find(m, "dev1", NULL));
    dev_free(m);
    m = load_ok(f, "# nothing yet\n\n   \n");
    assert_int_equal(dev_count(m), 0);
    dev_free(m);
}

static void test_long_ids(void **state)
{
    fixture *f = *state;
    char id[70], text[300];
    memset(id, 'd', 64);
    id[64] = '\0';
    snprintf(text, sizeof text, "%s,%.64s,%.64s\n", id, id, id);
    dev_map *m = load_ok(f, text);
    assert_maps(m, id, NULL, id, id);
    id[64] = 'd';
    id[65] = '\0';
    assert_null(dev_find(m, id, NULL));   /* longer than any key: never found */
    dev_free(m);
    snprintf(text, sizeof text, "%s,lot,1\n", id);
    char *errors = load_fail(f, text);
    assert_string_equal(errors, "F:1: device (a device id or DevEUI) is not a valid id: must "
                                "match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}\n");
    free(errors);
}

static void test_every_error(void **state)
{
    fixture *f = *state;
    char longline[DEV_LINE_MAX + 16];
    memset(longline, ' ', DEV_LINE_MAX + 1);   /* even a blank line over the bound is refused */
    longline[DEV_LINE_MAX + 1] = '\0';
    char text[2048];
    snprintf(text, sizeof text,
             "dev1,lot,1\n"          /* 1 */
             "dev2,lot\n"            /* 2: two fields */
             "dev3\n"                /* 3: one field */
             "dev4,lot,4,extra\n"    /* 4: four fields */
             "dev1,lot,5\n"          /* 5: device twice */
             "dev6,lot,1\n"          /* 6: bay taken */
             "bad id,lot,7\n"        /* 7: bad device */
             "dev8,.lot,8\n"         /* 8: bad lot */
             "dev9,lot,\n"           /* 9: empty bay */
             "%s\n"                  /* 10: too long */
             "0004a30b001c0530,lot,11\n"
             "0004A30B001C0530,lot,12\n"   /* 12: the same DevEUI in another case */
             ",,\n",                 /* 13: all three empty */
             longline);
    char *errors = load_fail(f, text);
    const char *rule = ": must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}\n";
    char expected[2048];
    snprintf(expected, sizeof expected,
             "F:2: expected 3 fields (device,lot,bay), got 2\n"
             "F:3: expected 3 fields (device,lot,bay), got 1\n"
             "F:4: expected 3 fields (device,lot,bay), got more\n"
             "F:5: device dev1 listed twice (first at line 1)\n"
             "F:6: lot lot bay 1 is already mapped to device dev1 (line 1)\n"
             "F:7: device (a device id or DevEUI) is not a valid id%s"
             "F:8: lot is not a valid id%s"
             "F:9: bay is empty%s"
             "F:10: line longer than %d bytes\n"
             "F:12: device 0004A30B001C0530 listed twice (first at line 11)\n"
             "F:13: device (a device id or DevEUI) is empty%s"
             "F:13: lot is empty%s"
             "F:13: bay is empty%s",
             rule, rule, rule, DEV_LINE_MAX, rule, rule, rule);
    assert_string_equal(errors, expected);
    free(errors);
}

static void test_line_bound(void **state)
{
    fixture *f = *state;
    char line[DEV_LINE_MAX + 2];
    /* exactly DEV_LINE_MAX bytes: accepted (the padding is trimmed) */
    memset(line, ' ', DEV_LINE_MAX);
    memcpy(line, "dev1,lot,1", 10);
    line[DEV_LINE_MAX] = '\n';
    line[DEV_LINE_MAX + 1] = '\0';
    dev_map *m = load_ok(f, line);
    assert_maps(m, "dev1", NULL, "lot", "1");
    dev_free(m);
}

static void test_error_cap(void **state)
{
    fixture *f = *state;
    size_t n = DEV_MAX_ERRORS + 5;
    char *text = malloc(n * 8 + 1), *p = text;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "x\n");
    char *errors = load_fail(f, text);
    size_t lines = 0;
    for (const char *q = errors; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, DEV_MAX_ERRORS + 1);
    assert_non_null(strstr(errors, "F: 5 more errors not shown\n"));
    free(errors);
    free(text);
}

static void test_too_many_lines(void **state)
{
    fixture *f = *state;
    size_t n = DEV_MAX_LINES + 1;
    char *text = malloc(n + 1);
    memset(text, '\n', n);   /* blank lines still count: the bound is on the file */
    text[n] = '\0';
    char *errors = load_fail(f, text);
    assert_string_equal(errors, "F: more than 1000000 lines\n");
    free(errors);
    text[n - 1] = '\0';
    dev_map *m = load_ok(f, text);
    assert_int_equal(dev_count(m), 0);
    dev_free(m);
    free(text);
}

static void test_not_regular(void **state)
{
    fixture *f = *state;
    dev_map *m = (dev_map *)1;
    char *errors = NULL;
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(dev_load(fifo, &m, &errors), -1);   /* must not block */
    assert_null(m);
    assert_non_null(strstr(errors, "not a regular file (a FIFO)"));
    free(errors);
    assert_int_equal(dev_load(f->dir, &m, &errors), -1);
    assert_non_null(strstr(errors, "not a regular file (a directory)"));
    free(errors);
    assert_int_equal(dev_load(f->path, &m, &errors), -1);   /* not written yet */
    assert_non_null(strstr(errors, "cannot read: No such file or directory"));
    free(errors);
}

static void test_too_large(void **state)
{
    fixture *f = *state;
    write_file(f->path, "dev1,lot,1\n");
    assert_int_equal(truncate(f->path, (off_t)DEV_MAX_FILE + 1), 0);   /* sparse: cheap */
    dev_map *m = (dev_map *)1;
    char *errors = NULL;
    assert_int_equal(dev_load(f->path, &m, &errors), -1);
    assert_null(m);
    assert_non_null(strstr(errors, ": larger than 67108864 bytes\n"));
    free(errors);
}

static void test_parse_memory(void **state)
{
    dev_map *m = NULL;
    char *errors = NULL;
    static const char data[] = "dev1,lot,1\ndev\0x,lot,2\n";   /* a NUL inside an id */
    assert_int_equal(dev_parse("mem", data, sizeof data - 1, &m, &errors), -1);
    assert_string_equal(errors, "mem:2: device (a device id or DevEUI) is not a valid id: must "
                                "match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}\n");
    free(errors);
    assert_int_equal(dev_parse("mem", data, 11, &m, &errors), 0);
    assert_maps(m, "dev1", NULL, "lot", "1");
    dev_free(m);
    assert_int_equal(dev_parse("mem", data, (size_t)DEV_MAX_FILE + 1, &m, &errors), -1);
    assert_string_equal(errors, "mem: larger than 67108864 bytes\n");
    free(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test(test_parse_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
