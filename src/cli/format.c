/* How the verbs write numbers and durations for people. */
#include <stdio.h>

#include "cli/cli.h"

void cli_thousands(char *buf, size_t size, unsigned long long v)
{
    char raw[32];
    int len = snprintf(raw, sizeof raw, "%llu", v), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < size; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

void cli_duration(char *buf, size_t size, double s)
{
    if (!(s >= 0) || s > 1e7) snprintf(buf, size, "?");
    else if (s < 60) snprintf(buf, size, "%.0fs", s);
    else if (s < 3600) snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, size, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}
