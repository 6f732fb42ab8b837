#include "grove_kernels.h"

#if defined(__GLIBC__)
#include <malloc.h>

void grove_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest threshold glibc accepts
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // never give the heap's top back mid-run
}
#else
void grove_keep_freed_memory(void) {}
#endif
