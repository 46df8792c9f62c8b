/* The one way numbers are read from text (options, metadata, configurations): the whole text
 * must be the number, NaN and infinities are refused, and so is a value outside [lo, hi]. */
#ifndef RN_CORE_NUMBER_H
#define RN_CORE_NUMBER_H

/* Reads a decimal integer (integer != 0) or a floating-point number. Returns 0, or -1 when
 * text is not such a number or lies outside [lo, hi]; it records no message (the caller knows
 * what the number was for). */
int rn_parse_number(const char *text, int integer, double lo, double hi, double *out);

#endif
