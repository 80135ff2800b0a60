/* payload: input topics, ids, timestamps and payloads (SPEC §2, §3).
 *
 * Everything here runs on every MQTT message and is fuzzed, so it trusts no byte: lengths are
 * explicit, nothing relies on a terminator inside a payload, and the only memory allocated is
 * jansson's tree, freed before each call returns. */
#include "payload.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* 10000-01-01T00:00:00Z. Event times at or beyond it do not fit the four-digit years of the
 * output format, and times before the epoch cannot be Redis stream ids (SPEC §5), so a payload
 * ts must lie in [0, PL_TS_LIMIT_S). */
#define PL_TS_LIMIT_S INT64_C(253402300800)
#define PL_TS_LIMIT_MS (PL_TS_LIMIT_S * 1000)

/* A length-delimited view into caller memory; never NUL-terminated. */
typedef struct span {
    const char *p;
    size_t len;
} span;

/* A read position in [p, end). */
typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

/* ---- reasons ------------------------------------------------------------------------------ */

static const char *const reject_names[PL_REJECT_COUNT] = {
    [PL_OK] = "ok",
    [PL_BAD_TOPIC] = "bad_topic",
    [PL_BAD_ID] = "bad_id",
    [PL_UNKNOWN_LOT] = "unknown_lot",
    [PL_MALFORMED] = "malformed",
    [PL_OVERSIZE] = "oversize",
    [PL_WRONG_KIND] = "wrong_kind",
    [PL_FUTURE] = "future",
    [PL_TOO_MANY_BAYS] = "too_many_bays",
    [PL_AMBIGUOUS_ZONE] = "ambiguous_zone",
};

const char *pl_reject_name(enum pl_reject reason)
{
    if ((unsigned)reason >= PL_REJECT_COUNT)
        return "invalid";
    return reject_names[reason];
}

/* ---- small byte helpers (ASCII only: ids and payloads must not depend on the locale) ------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* True when C is one of the characters of SET; a NUL byte is never in the set (strchr would
 * otherwise match the terminator). */
static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool span_is(span s, const char *word)
{
    return s.len == strlen(word) && memcmp(s.p, word, s.len) == 0;
}

/* Strips the surrounding ASCII whitespace that sensors add (trailing newlines from shell tools). */
static span trim_space(const char *p, size_t len)
{
    static const char space[] = " \t\r\n\v\f";
    while (len > 0 && in_set(p[0], space)) {
        p++;
        len--;
    }
    while (len > 0 && in_set(p[len - 1], space))
        len--;
    return (span){p, len};
}

/* Consumes one byte of SET at C. */
static bool take_char(cursor *c, const char *set)
{
    if (c->p >= c->end || !in_set(*c->p, set))
        return false;
    c->p++;
    return true;
}

/* ---- ids and topics ----------------------------------------------------------------------- */

bool pl_valid_id(const char *s, size_t len)
{
    if (!s || len == 0 || len > PL_ID_MAX || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && !in_set(s[i], "_.-"))
            return false;
    return true;
}

/* Returns what follows "PREFIX/" in TOPIC, or NULL when TOPIC is not under PREFIX. An empty
 * prefix puts the lot in the first level. */
static const char *strip_prefix(const char *topic, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return topic;
    if (strncmp(topic, prefix, n) != 0 || topic[n] != '/')
        return NULL;
    return topic + n + 1;
}

/* Splits S at '/' into LEVELS; returns the number of levels, or MAX + 1 when there are more
 * than MAX (the caller only needs to know that the shape is wrong). */
static size_t split_levels(const char *s, span *levels, size_t max)
{
    size_t n = 0;
    for (;;) {
        const char *slash = strchr(s, '/');
        if (n == max)
            return max + 1;
        levels[n++] = (span){s, slash ? (size_t)(slash - s) : strlen(s)};
        if (!slash)
            return n;
        s = slash + 1;
    }
}

/* Maps the level shape to a kind: LOT/count, LOT/bay/ID or LOT/gate/ID. */
static bool topic_kind(const span *levels, size_t n, enum pl_kind *kind)
{
    for (size_t i = 0; i < n; i++)
        if (levels[i].len == 0)
            return false;
    if (n == 2 && span_is(levels[1], "count"))
        *kind = PL_KIND_COUNT;
    else if (n == 3 && span_is(levels[1], "bay"))
        *kind = PL_KIND_BAY;
    else if (n == 3 && span_is(levels[1], "gate"))
        *kind = PL_KIND_GATE;
    else
        return false;
    return true;
}

/* What follows PREFIX/ in TOPIC, or NULL. Wildcards are never part of a published topic name;
 * seeing one means a confused client. */
static const char *topic_rest(const char *topic, const char *prefix)
{
    if (!topic || !prefix || strpbrk(topic, "+#"))
        return NULL;
    return strip_prefix(topic, prefix);
}

enum pl_reject pl_parse_topic(const char *topic, const char *prefix, pl_topic *out)
{
    memset(out, 0, sizeof *out);
    const char *rest = topic_rest(topic, prefix);
    if (!rest)
        return PL_BAD_TOPIC;
    span levels[3];
    size_t n = split_levels(rest, levels, 3);
    enum pl_kind kind;
    if (n > 3 || !topic_kind(levels, n, &kind))
        return PL_BAD_TOPIC;
    bool has_sensor = kind != PL_KIND_COUNT;
    if (!pl_valid_id(levels[0].p, levels[0].len) ||
        (has_sensor && !pl_valid_id(levels[2].p, levels[2].len)))
        return PL_BAD_ID;
    out->kind = kind;
    memcpy(out->lot, levels[0].p, levels[0].len);
    if (has_sensor)
        memcpy(out->sensor, levels[2].p, levels[2].len);
    return PL_OK;
}

/* ---- calendar arithmetic (proleptic Gregorian, independent of TZ and the C library) -------- */

/* Days since 1970-01-01 of Y-M-D (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap_year(int y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* ---- ISO-8601 / RFC-3339 parsing ---------------------------------------------------------- */

typedef struct civil_time {
    int year, month, day, hour, minute, second;
} civil_time;

/* Reads exactly WIDTH decimal digits. */
static bool take_fixed(cursor *c, int width, int *value)
{
    int v = 0;
    for (int i = 0; i < width; i++) {
        if (c->p >= c->end || !is_digit(*c->p))
            return false;
        v = v * 10 + (*c->p++ - '0');
    }
    *value = v;
    return true;
}

static bool take_date(cursor *c, civil_time *t)
{
    return take_fixed(c, 4, &t->year) && take_char(c, "-") && take_fixed(c, 2, &t->month) &&
           take_char(c, "-") && take_fixed(c, 2, &t->day);
}

/* Seconds are required: RFC 3339 has no minute-only form, and guessing :00 would hide bugs. */
static bool take_clock(cursor *c, civil_time *t)
{
    return take_fixed(c, 2, &t->hour) && take_char(c, ":") && take_fixed(c, 2, &t->minute) &&
           take_char(c, ":") && take_fixed(c, 2, &t->second);
}

/* Reads an optional ".ddd…" and rounds it half up to whole ms (so 0.9995 s gives 1000 ms,
 * which the caller simply adds). Any number of digits; only the fourth decides the rounding. */
static bool take_fraction(cursor *c, int *ms)
{
    *ms = 0;
    if (!take_char(c, "."))
        return true;
    int digits = 0, round_digit = 0;
    while (c->p < c->end && is_digit(*c->p)) {
        int d = *c->p++ - '0';
        if (digits < 3)
            *ms = *ms * 10 + d;
        else if (digits == 3)
            round_digit = d;
        if (digits < 4) /* saturate: the count only matters up to the rounding digit */
            digits++;
    }
    if (digits == 0)
        return false;
    for (int i = digits; i < 3; i++)
        *ms *= 10;
    *ms += round_digit >= 5;
    return true;
}

/* Reads the zone: Z, or an offset +HH:MM, +HHMM or +HH (ISO 8601 allows all three). A missing
 * zone fails: the time would be ambiguous, and guessing UTC or local shifts events by hours. */
static bool take_zone(cursor *c, int *offset_s)
{
    *offset_s = 0;
    if (take_char(c, "Zz"))
        return true;
    if (c->p >= c->end || !in_set(*c->p, "+-"))
        return false;
    int sign = *c->p++ == '-' ? -1 : 1;
    int hh, mm = 0;
    if (!take_fixed(c, 2, &hh))
        return false;
    bool has_minutes = take_char(c, ":") || (c->p < c->end && is_digit(*c->p));
    if (has_minutes && !take_fixed(c, 2, &mm))
        return false;
    if (hh > 23 || mm > 59)
        return false;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return true;
}

/* Second 60 is a leap second; it is accepted anywhere and counts as the next minute's :00. */
static bool civil_valid(const civil_time *t)
{
    return t->month >= 1 && t->month <= 12 && t->day >= 1 &&
           t->day <= days_in_month(t->year, t->month) && t->hour <= 23 && t->minute <= 59 &&
           t->second <= 60;
}

int pl_parse_time(const char *s, size_t len, int64_t *ts_ms)
{
    if (!s)
        return -1;
    cursor c = {s, s + len};
    civil_time t;
    int frac_ms, offset_s;
    if (!take_date(&c, &t) || !take_char(&c, "Tt ") || !take_clock(&c, &t) ||
        !take_fraction(&c, &frac_ms) || !take_zone(&c, &offset_s) || c.p != c.end ||
        !civil_valid(&t))
        return -1;
    int64_t days = days_from_civil(t.year, (unsigned)t.month, (unsigned)t.day);
    int64_t secs = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second - offset_s;
    *ts_ms = secs * 1000 + frac_ms;
    return 0;
}

/* Floor division: event times before the epoch still format as the second they fall in. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

size_t pl_format_time(int64_t ts_ms, char *buf, size_t size)
{
    if (!buf || size == 0)
        return 0;
    int64_t secs = floor_div(ts_ms, 1000);
    int64_t days = floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999 && size >= 21) {
        /* by hand, not snprintf (3,000 instructions, once per lot write): the years a clock or
         * a replay gives; others keep snprintf's wider forms */
        unsigned v[6] = { (unsigned)y, m, d, (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60),
                          (unsigned)(sod % 60) };
        static const char seps[6] = { '-', '-', 'T', ':', ':', 'Z' };
        char *p = buf;
        for (int i = 0; i < 6; i++) {
            if (i == 0) {
                *p++ = (char)('0' + v[0] / 1000);
                *p++ = (char)('0' + v[0] / 100 % 10);
            }
            *p++ = (char)('0' + v[i] / 10 % 10);
            *p++ = (char)('0' + v[i] % 10);
            *p++ = seps[i];
        }
        *p = '\0';
        return 20;
    }
    int n = snprintf(buf, size, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
                     (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60));
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- the top-level "seq" of a gate payload ----------------------------------------------------
 * jansson stores integers as json_int_t (int64) and fails the whole document on anything above
 * INT64_MAX, while seq is unsigned 64-bit. So before jansson runs, a small string-aware scan of
 * the top-level object finds the raw "seq" number and reads it as uint64; jansson then parses
 * the payload with that token replaced by "0" and validates everything else. The scan need only
 * be right for documents jansson accepts: when it meets anything it does not understand it gives
 * up and leaves the payload untouched, and jansson rejects it (or, failing that, the int64 value
 * jansson read is used). */

enum seq_scan { SEQ_ABSENT, SEQ_FOUND, SEQ_BAD };

typedef struct seq_token {
    size_t start, len; /* the number's bytes within the scanned span */
    uint64_t value;
} seq_token;

static void skip_json_space(cursor *c)
{
    while (c->p < c->end && in_set(*c->p, " \t\r\n"))
        c->p++;
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the escape after a backslash into *CODE (a UTF-16 unit for \u; surrogates need no
 * pairing here because they never equal an ASCII key character). */
static bool scan_escape(cursor *c, long *code)
{
    static const char plain[] = "\"\\/bfnrt";
    static const char value[] = "\"\\/\b\f\n\r\t";
    if (c->p >= c->end)
        return false;
    char e = *c->p++;
    if (e != 'u') {
        const char *hit = in_set(e, plain) ? strchr(plain, e) : NULL;
        if (!hit)
            return false;
        *code = (unsigned char)value[hit - plain];
        return true;
    }
    *code = 0;
    for (int i = 0; i < 4; i++) {
        int h = c->p < c->end ? hex_value(*c->p++) : -1;
        if (h < 0)
            return false;
        *code = *code * 16 + h;
    }
    return true;
}

/* Reads the JSON string starting at C's opening quote; when WANT is given, *MATCHES tells whether
 * its decoded value is exactly WANT (so "s\u0065q" is "seq", as it is for jansson). */
static bool scan_string(cursor *c, const char *want, bool *matches)
{
    size_t want_len = want ? strlen(want) : 0, n = 0;
    bool same = want != NULL;
    if (!take_char(c, "\""))
        return false;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        long code = ch;
        if (ch == '"') {
            if (matches)
                *matches = same && n == want_len;
            return true;
        }
        if (ch < 0x20 || (ch == '\\' && !scan_escape(c, &code)))
            return false;
        if (same && (n >= want_len || code != (unsigned char)want[n]))
            same = false;
        n++;
    }
    return false;
}

/* Skips an object or array by bracket depth, stepping over strings so brackets inside them do
 * not count. Iterative: nesting depth costs no stack. */
static bool skip_nested(cursor *c)
{
    size_t depth = 0;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '"') {
            if (!scan_string(c, NULL, NULL))
                return false;
            continue;
        }
        c->p++;
        if (ch == '{' || ch == '[')
            depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0)
            return true;
    }
    return false;
}

/* Skips one value without validating it (jansson does that). */
static bool skip_value(cursor *c)
{
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return scan_string(c, NULL, NULL);
    if (*c->p == '{' || *c->p == '[')
        return skip_nested(c);
    const char *start = c->p;
    while (c->p < c->end && !in_set(*c->p, ",}] \t\r\n"))
        c->p++;
    return c->p > start;
}

/* Reads a JSON integer literal as uint64: "0" or [1-9][0-9]*, at most UINT64_MAX. A sign, a
 * fraction or an exponent makes it not an unsigned integer. */
static bool parse_uint64_literal(span s, uint64_t *value)
{
    if (s.len == 0 || (s.len > 1 && s.p[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i]))
            return false;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *value = v;
    return true;
}

/* At the value of the top-level "seq": a number token is read here; any other value is left to
 * jansson's type check. */
static enum seq_scan read_seq_token(cursor *c, const char *base, seq_token *tok)
{
    if (c->p >= c->end || !in_set(*c->p, "-0123456789"))
        return SEQ_ABSENT;
    const char *start = c->p;
    while (c->p < c->end && in_set(*c->p, "0123456789+-.eE"))
        c->p++;
    span number = {start, (size_t)(c->p - start)};
    if (!parse_uint64_literal(number, &tok->value))
        return SEQ_BAD;
    tok->start = (size_t)(start - base);
    tok->len = number.len;
    return SEQ_FOUND;
}

/* Walks the members of the top-level object in S looking for "seq". Stops at the first: a
 * second one is a duplicate key, which jansson rejects either way. */
static enum seq_scan find_seq(span s, seq_token *tok)
{
    cursor c = {s.p, s.p + s.len};
    skip_json_space(&c);
    if (!take_char(&c, "{"))
        return SEQ_ABSENT;
    skip_json_space(&c);
    if (take_char(&c, "}"))
        return SEQ_ABSENT;
    for (;;) {
        bool is_seq = false;
        if (!scan_string(&c, "seq", &is_seq))
            return SEQ_ABSENT;
        skip_json_space(&c);
        if (!take_char(&c, ":"))
            return SEQ_ABSENT;
        skip_json_space(&c);
        if (is_seq)
            return read_seq_token(&c, s.p, tok);
        if (!skip_value(&c))
            return SEQ_ABSENT;
        skip_json_space(&c);
        if (!take_char(&c, ","))
            return SEQ_ABSENT; /* "}" (done) or garbage (jansson's to reject) */
        skip_json_space(&c);
    }
}

/* ---- loading JSON through jansson --------------------------------------------------------- */

/* Feeds jansson up to three pieces in turn: the payload before the seq token, "0", the rest. */
typedef struct splice {
    span part[3];
    size_t index, offset;
} splice;

static size_t splice_read(void *buffer, size_t buflen, void *data)
{
    splice *sp = data;
    while (sp->index < 3 && sp->offset == sp->part[sp->index].len) {
        sp->index++;
        sp->offset = 0;
    }
    if (sp->index == 3)
        return 0;
    span part = sp->part[sp->index];
    size_t n = part.len - sp->offset < buflen ? part.len - sp->offset : buflen;
    memcpy(buffer, part.p + sp->offset, n);
    sp->offset += n;
    return n;
}

/* Parses S as one JSON object (nothing after it, duplicate keys rejected, no NUL in strings),
 * with TOK's bytes replaced by "0" when given. Returns a new reference, or NULL when malformed. */
static json_t *load_object(span s, const seq_token *tok)
{
    splice sp = {.part = {s}};
    if (tok) {
        sp.part[0] = (span){s.p, tok->start};
        sp.part[1] = (span){"0", 1};
        sp.part[2] = (span){s.p + tok->start + tok->len, s.len - tok->start - tok->len};
    }
    json_error_t error;
    json_t *root = json_load_callback(splice_read, &sp, JSON_REJECT_DUPLICATES, &error);
    if (root && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- the fast path: flat objects of simple members -----------------------------------------
 * Sensors send small flat objects ({"occupied":true,"ts":1475567982.5}), and jansson's general
 * parser (a byte at a time through its stream reader) was a fifth of parkd's instructions per
 * event. An object whose members are all simple — a key of printable ASCII without escapes, and
 * true, false, a string of printable ASCII without escapes, or a number without sign, exponent
 * or leading zero of at most 18 integer digits — is built here with jansson's constructors, the
 * values exactly as jansson's own parser makes them (strtoll, strtod). Anything else, or any
 * doubt, returns NULL and goes to jansson's parser, which stays the authority: this accepts a
 * subset of what it accepts (test_payload_fast compares the two on generated payloads). */

#define PL_FAST_MEMBERS 8
#define PL_FAST_KEY_MAX 32
#define PL_FAST_NUMBER_MAX 40

static bool fast_string(cursor *c, span *out)
{
    if (!take_char(c, "\""))
        return false;
    const char *start = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return false;   /* escapes, control bytes and UTF-8: jansson checks them */
        c->p++;
    }
    if (c->p == c->end)
        return false;
    *out = (span){start, (size_t)(c->p - start)};
    c->p++;
    return true;
}

static json_t *fast_number(cursor *c)
{
    const char *start = c->p;
    if (c->p < c->end && *c->p == '0' && c->p + 1 < c->end && is_digit(c->p[1]))
        return NULL;        /* a leading zero: invalid JSON, jansson says so */
    size_t digits = 0;
    while (c->p < c->end && is_digit(*c->p)) {
        c->p++;
        digits++;
    }
    bool real = c->p < c->end && *c->p == '.';
    if (real) {
        c->p++;
        if (c->p == c->end || !is_digit(*c->p))
            return NULL;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    size_t len = (size_t)(c->p - start);
    if (digits == 0 || digits > 18 || len >= PL_FAST_NUMBER_MAX ||
        (c->p < c->end && in_set(*c->p, "eE")))
        return NULL;
    char text[PL_FAST_NUMBER_MAX];
    memcpy(text, start, len);
    text[len] = '\0';
    return real ? json_real(strtod(text, NULL)) : json_integer(strtoll(text, NULL, 10));
}

static bool fast_word(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

static json_t *fast_value(cursor *c)
{
    if (c->p == c->end)
        return NULL;
    if (*c->p == '"') {
        span v;
        return fast_string(c, &v) ? json_stringn_nocheck(v.p, v.len) : NULL;
    }
    if (fast_word(c, "true"))
        return json_true();
    if (fast_word(c, "false"))
        return json_false();
    return is_digit(*c->p) ? fast_number(c) : NULL;
}

/* One member at C into OBJ; false (OBJ as it was, apart from what it owns) on anything else. */
static bool fast_member(cursor *c, json_t *obj)
{
    span key;
    skip_json_space(c);
    if (!fast_string(c, &key) || key.len > PL_FAST_KEY_MAX)
        return false;
    skip_json_space(c);
    if (!take_char(c, ":"))
        return false;
    skip_json_space(c);
    json_t *v = fast_value(c);
    if (!v)
        return false;
    char name[PL_FAST_KEY_MAX + 1];
    memcpy(name, key.p, key.len);
    name[key.len] = '\0';
    if (json_object_get(obj, name)) {   /* a duplicate: jansson rejects it (JSON_REJECT_DUPLICATES) */
        json_decref(v);
        return false;
    }
    return json_object_set_new_nocheck(obj, name, v) == 0;
}

/* S as a flat object of simple members, or NULL: jansson's parser decides. */
static json_t *load_flat_object(span s)
{
    cursor c = {s.p, s.p + s.len};
    if (!take_char(&c, "{"))
        return NULL;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    skip_json_space(&c);
    bool ok = take_char(&c, "}");
    for (int n = 0; !ok && n < PL_FAST_MEMBERS; n++) {
        if (!fast_member(&c, obj))
            break;
        skip_json_space(&c);
        if (take_char(&c, "}"))
            ok = true;
        else if (!take_char(&c, ","))
            break;
    }
    if (!ok || c.p != c.end) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ---- typed members ------------------------------------------------------------------------ */

/* Reads an optional integer member into *VALUE (left alone when absent). False when it is
 * present but not a JSON integer (1.0 included: counts are counted, not measured) or below MIN. */
static bool read_int(const json_t *obj, const char *key, int64_t min, bool *present,
                     int64_t *value)
{
    const json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *value = json_integer_value(v);
    return true;
}

/* Seconds since the epoch, fractions rounded half up to ms. */
static bool ts_from_number(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s < 0 || s >= PL_TS_LIMIT_S)
            return false;
        *ms = s * 1000;
        return true;
    }
    double x = json_real_value(v);
    if (!isfinite(x) || x < 0 || x >= (double)PL_TS_LIMIT_S)
        return false;
    *ms = (int64_t)(x * 1000.0 + 0.5);
    return true;
}

/* Reads the optional time member KEY (SPEC §3 T): a number of seconds or an ISO-8601 string. */
static bool read_time(const json_t *obj, const char *key, bool *present, int64_t *ts_ms)
{
    const json_t *v = json_object_get(obj, key);
    int64_t ms;
    *present = false;
    if (!v)
        return true;
    if (json_is_string(v)) {
        if (pl_parse_time(json_string_value(v), json_string_length(v), &ms) != 0)
            return false;
    } else if (!json_is_number(v) || !ts_from_number(v, &ms)) {
        return false;
    }
    if (ms < 0 || ms >= PL_TS_LIMIT_MS)
        return false;
    *present = true;
    *ts_ms = ms;
    return true;
}

static bool read_ts(const json_t *obj, pl_event *out)
{
    return read_time(obj, "ts", &out->has_ts, &out->ts_ms);
}

/* With TOK, jansson saw our "0" and the real value is TOK's; without it (scan gave up), jansson's
 * own int64 value is used. */
static bool read_seq(const json_t *obj, const seq_token *tok, pl_event *out)
{
    const json_t *v = json_object_get(obj, "seq");
    if (!v)
        return tok == NULL;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (tok && json_integer_value(v) != 0))
        return false;
    out->has_seq = true;
    out->seq = tok ? tok->value : (uint64_t)json_integer_value(v);
    return true;
}

static bool gate_event(span s, bool *gate_in)
{
    if (span_is(s, "in") || span_is(s, "out")) {
        *gate_in = s.len == 2;
        return true;
    }
    return false;
}

/* ---- one function per kind and form ------------------------------------------------------- */

static bool parse_bay_json(const json_t *obj, pl_event *out)
{
    const json_t *v = json_object_get(obj, "occupied");
    if (json_is_boolean(v))
        out->occupied = json_is_true(v);
    else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        out->occupied = json_integer_value(v) == 1;
    else
        return false;
    return read_ts(obj, out);
}

static bool parse_gate_json(const json_t *obj, const seq_token *tok, pl_event *out)
{
    const json_t *ev = json_object_get(obj, "event");
    if (!json_is_string(ev))
        return false;
    span event = {json_string_value(ev), json_string_length(ev)};
    bool has_count;
    int64_t count = 1;
    if (!gate_event(event, &out->gate_in) || !read_int(obj, "count", 1, &has_count, &count))
        return false;
    out->count = (uint64_t)count;
    return read_seq(obj, tok, out) && read_ts(obj, out);
}

static bool parse_count_json(const json_t *obj, pl_event *out)
{
    bool has_occupied, has_free;
    int64_t occupied = 0, free_spaces = 0;
    if (!read_int(obj, "occupied", 0, &has_occupied, &occupied) ||
        !read_int(obj, "free", 0, &has_free, &free_spaces))
        return false;
    if (has_occupied == has_free) /* exactly one: both would disagree, neither says nothing */
        return false;
    out->is_free = has_free;
    out->value = has_free ? free_spaces : occupied;
    return read_int(obj, "capacity", 1, &out->has_capacity, &out->capacity) &&
           read_ts(obj, out);
}

/* FAST: try load_flat_object first (false only in tests, to compare with jansson alone). */
static bool parse_json_with(enum pl_kind kind, span s, pl_event *out, bool fast)
{
    /* A NUL byte is never valid JSON text, but jansson 2.14 loses one that follows a number or
     * literal when its lexer pushes the byte back ("{\"a\":1<NUL>}" loads as {"a":1}). */
    if (memchr(s.p, '\0', s.len))
        return false;
    seq_token tok;
    enum seq_scan scan = kind == PL_KIND_GATE ? find_seq(s, &tok) : SEQ_ABSENT;
    if (scan == SEQ_BAD)
        return false;
    const seq_token *found = scan == SEQ_FOUND ? &tok : NULL;
    /* The fast path's seq is jansson's own int64 value: at most 18 digits, so it fits, and
     * read_seq takes it without the token. */
    json_t *root = fast ? load_flat_object(s) : NULL;
    if (!root)
        root = load_object(s, found);
    else
        found = NULL;
    if (!root)
        return false;
    bool ok = false;
    switch (kind) {
    case PL_KIND_BAY:
        ok = parse_bay_json(root, out);
        break;
    case PL_KIND_GATE:
        ok = parse_gate_json(root, found, out);
        break;
    case PL_KIND_COUNT:
        ok = parse_count_json(root, out);
        break;
    }
    json_decref(root);
    return ok;
}

static bool parse_json(enum pl_kind kind, span s, pl_event *out)
{
    return parse_json_with(kind, s, out, true);
}

static bool parse_bay_bare(span s, pl_event *out)
{
    if (span_is(s, "1") || span_is(s, "true") || span_is(s, "occupied")) {
        out->occupied = true;
        return true;
    }
    return span_is(s, "0") || span_is(s, "false") || span_is(s, "free");
}

/* Plain decimal digits up to INT64_MAX; no sign (negative counts are malformed). */
static bool parse_count_bare(span s, pl_event *out)
{
    int64_t v = 0;
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i]))
            return false;
        int d = s.p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    out->value = v;
    return true;
}

static bool parse_bare(enum pl_kind kind, span s, pl_event *out)
{
    switch (kind) {
    case PL_KIND_BAY:
        return parse_bay_bare(s, out);
    case PL_KIND_GATE:
        out->count = 1;
        return gate_event(s, &out->gate_in);
    case PL_KIND_COUNT:
        return parse_count_bare(s, out);
    }
    return false;
}

enum pl_reject pl_parse_payload(enum pl_kind kind, const char *payload, size_t len, pl_event *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    span s = payload ? trim_space(payload, len) : (span){"", 0};
    bool ok = s.len > 0 && s.p[0] == '{' ? parse_json(kind, s, out) : parse_bare(kind, s, out);
    if (ok)
        return PL_OK;
    /* Leave nothing half-filled behind for a caller that forgets to check. */
    memset(out, 0, sizeof *out);
    out->kind = kind;
    return PL_MALFORMED;
}

/* ---- admin input (SPEC §10 closures) ------------------------------------------------------ */

enum pl_reject pl_parse_admin_topic(const char *topic, const char *prefix, char *lot)
{
    lot[0] = '\0';
    const char *rest = topic_rest(topic, prefix);
    if (!rest)
        return PL_BAD_TOPIC;
    span levels[2];
    size_t n = split_levels(rest, levels, 2);
    if (n != 2 || levels[0].len == 0 || !span_is(levels[1], "state"))
        return PL_BAD_TOPIC;
    if (!pl_valid_id(levels[0].p, levels[0].len))
        return PL_BAD_ID;
    memcpy(lot, levels[0].p, levels[0].len);
    lot[levels[0].len] = '\0';
    return PL_OK;
}

/* "reason": optional; a string without NUL of at most PL_REASON_MAX bytes. */
static bool read_reason(const json_t *obj, pl_admin *out)
{
    const json_t *v = json_object_get(obj, "reason");
    if (!v)
        return true;
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    if (n > PL_REASON_MAX || memchr(json_string_value(v), '\0', n))
        return false;
    memcpy(out->reason, json_string_value(v), n);
    out->reason[n] = '\0';
    return true;
}

static bool parse_admin_json(const json_t *root, pl_admin *out)
{
    const json_t *st = json_object_get(root, "state");
    if (!json_is_string(st))
        return false;
    if (strcmp(json_string_value(st), "closed") == 0)
        out->closed = true;
    else if (strcmp(json_string_value(st), "open") != 0)
        return false;
    return read_reason(root, out) && read_time(root, "until", &out->has_until, &out->until_ms);
}

enum pl_reject pl_parse_admin(const char *payload, size_t len, pl_admin *out)
{
    memset(out, 0, sizeof *out);
    span s = payload ? trim_space(payload, len) : (span){"", 0};
    /* the same jansson NUL caveat as parse_json */
    if (s.len == 0 || s.p[0] != '{' || memchr(s.p, '\0', s.len))
        return PL_MALFORMED;
    json_t *root = load_object(s, NULL);
    bool ok = root && parse_admin_json(root, out);
    json_decref(root);
    if (ok)
        return PL_OK;
    memset(out, 0, sizeof *out);
    return PL_MALFORMED;
}
