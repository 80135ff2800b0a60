/* fuzz_time: libFuzzer target for pl_parse_time and pl_format_time (SPEC §3 T).
 *
 * The input is parsed as a time; whatever pl_parse_time accepts is checked against an
 * independent reading (fixed positions, glibc's timegm for the calendar) and formatted back. The
 * first 8 bytes are also formatted as an arbitrary int64 ms value, which must give a
 * NUL-terminated string of the fixed shape within the buffer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* timegm */
#endif
#include "payload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_time: %s\n", what);
    abort();
}

static int digits(const char *s, size_t n, int *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* The ms value of an accepted S, computed another way: YYYY-MM-DD?HH:MM:SS at fixed positions
 * through timegm (second 60 included, which timegm normalises into the next minute), then the
 * fraction rounded half up at the fourth digit, then the zone. Returns -1 when S does not have
 * that shape, which for an accepted S is itself a bug. */
static int reference_ms(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, sec;
    if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm);
    size_t i = 19;
    int64_t ms = 0;
    if (i < len && s[i] == '.') {
        int n = 0, round = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++) {
            if (n < 3)
                ms = ms * 10 + (s[i] - '0');
            else if (n == 3)
                round = s[i] - '0';
        }
        for (int k = n; k < 3; k++)
            ms *= 10;
        ms += round >= 5;
    }
    int64_t offset = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
        const char *z = s + i + 1;
        size_t rest = len - i - 1;
        if (rest < 2 || digits(z, 2, &oh))
            return -1;
        if (rest == 5 && z[2] == ':')
            digits(z + 3, 2, &om);
        else if (rest == 4)
            digits(z + 2, 2, &om);
        offset = sign * (oh * 3600 + om * 60);
    }
    *out = (secs - offset) * 1000 + ms;
    return 0;
}

/* 0000-01-01 and 9999-12-31 bound what the four-digit years of the input can say, offsets
 * and leap seconds adding at most a day. */
#define MIN_MS (INT64_C(-62167219200000) - 86400000)
#define MAX_MS (INT64_C(253402300800000) + 86400000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int64_t ms = 0;
    if (pl_parse_time(s, size, &ms) == 0) {
        int64_t want;
        if (reference_ms(s, size, &want) != 0)
            die("accepted a time of the wrong shape");
        if (ms != want)
            die("parsed value disagrees with timegm");
        if (ms < MIN_MS || ms > MAX_MS)
            die("parsed value out of the four-digit-year range");
        if (ms >= 0 && ms < INT64_C(253402300800000)) {
            char buf[32];
            int64_t back;
            size_t n = pl_format_time(ms, buf, sizeof buf);
            if (n != 20 || pl_parse_time(buf, n, &back) != 0 || back != ms - ms % 1000)
                die("format + parse does not round-trip");
        }
    }
    if (size >= 8) {
        int64_t v;
        char buf[32];
        memcpy(&v, data, sizeof v);
        memset(buf, 'x', sizeof buf);
        size_t n = pl_format_time(v, buf, sizeof buf);
        if (n >= sizeof buf || buf[n] != '\0' || strlen(buf) != n || buf[n - 1] != 'Z')
            die("pl_format_time output malformed");
        char small[8];
        n = pl_format_time(v, small, sizeof small);     /* truncation stays in bounds */
        if (n >= sizeof small || small[n] != '\0')
            die("pl_format_time truncation");
    }
    return 0;
}
