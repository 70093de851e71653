// hwloc's C API, for QAQTuning's topology reader (Debian: libhwloc-dev).
#include <hwloc.h>
