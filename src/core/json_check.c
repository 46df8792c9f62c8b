/* A JSON checker that allocates nothing (json_check.h). It accepts a subset of what cJSON 1.7
 * parses: where the two could differ (control characters in strings, whitespace other than
 * the four of RFC 8259, a byte-order mark, numbers longer than cJSON's 63-byte buffer, text
 * after the value, nesting near cJSON's limit of 1000) it refuses. */
#include "core/json_check.h"

#include <string.h>

#define MAX_DEPTH 500
#define MAX_NUMBER 63

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Four hex digits at p (stops at the text's end, which is not one). */
static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        const char c = p[i];
        unsigned d;
        if (is_digit(c)) d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* p at the opening quote; returns the position after the closing one, or NULL. */
static const char *check_string(const char *p)
{
    for (p++;; p++) {
        const unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL; /* a raw control character, or the end of the text */
        if (c != '\\') continue;
        const char e = *++p;
        if (e && strchr("\"\\/bfnrt", e)) continue;
        unsigned u, lo;
        if (e != 'u' || !hex4(p + 1, &u)) return NULL;
        p += 4;
        if (u >= 0xDC00 && u <= 0xDFFF) return NULL; /* a low surrogate alone */
        if (u >= 0xD800 && u <= 0xDBFF) {            /* a high one: its low half must follow */
            if (p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return NULL;
            p += 6;
        }
    }
}

static const char *check_number(const char *p)
{
    const char *start = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (is_digit(*p)) while (is_digit(*p)) p++;
    else return NULL;
    if (*p == '.') {
        if (!is_digit(*++p)) return NULL;
        while (is_digit(*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit(*p)) return NULL;
        while (is_digit(*p)) p++;
    }
    return p - start <= MAX_NUMBER ? p : NULL;
}

static const char *check_value(const char *p, int depth);

/* p at '{' or '['. */
static const char *check_container(const char *p, int depth)
{
    const int object = *p == '{';
    const char close = object ? '}' : ']';
    p = skip_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
        if (object) {
            p = skip_ws(p);
            if (*p != '"' || !(p = check_string(p))) return NULL;
            p = skip_ws(p);
            if (*p++ != ':') return NULL;
        }
        if (!(p = check_value(p, depth))) return NULL;
        p = skip_ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
    }
}

static const char *check_value(const char *p, int depth)
{
    p = skip_ws(p);
    switch (*p) {
    case '"': return check_string(p);
    case '{':
    case '[': return depth < MAX_DEPTH ? check_container(p, depth + 1) : NULL;
    case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
    default: return check_number(p);
    }
}

int rn_json_valid(const char *text)
{
    const char *end = text ? check_value(text, 0) : NULL;
    return end && *skip_ws(end) == '\0';
}
