/* The library's version, from the macros in the public header. */
#include "resnet.h"

#define RN_TEXT(x) #x
#define RN_NUMBER_TEXT(x) RN_TEXT(x)

const char *rn_version(void)
{
    return RN_NUMBER_TEXT(RN_VERSION_MAJOR) "." RN_NUMBER_TEXT(RN_VERSION_MINOR) "." RN_NUMBER_TEXT(
        RN_VERSION_PATCH);
}
