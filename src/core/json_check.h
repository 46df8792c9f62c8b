/* Whether a text is JSON, checked without allocating: cJSON_Parse returns NULL both for text
 * that is not JSON and when it runs out of memory, and only this tells the two apart. */
#ifndef RN_CORE_JSON_CHECK_H
#define RN_CORE_JSON_CHECK_H

/* 1 when text is one JSON value (RFC 8259, surrounded by whitespace at most) that cJSON parses:
 * strings without raw control characters, numbers of at most 63 characters, nesting to a depth
 * of 500. Else 0. Anything it accepts, cJSON_Parse accepts too, so a NULL from cJSON_Parse on
 * such a text means that memory ran out. */
int rn_json_valid(const char *text);

#endif
