/* The one clock for durations: monotonic seconds (never jumps with the wall clock). */
#ifndef RN_CORE_CLOCK_H
#define RN_CORE_CLOCK_H

double rn_clock_s(void);

#endif
