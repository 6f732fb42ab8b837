#include "grove_kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Tensor storage. A training step frees and re-allocates the same activation sizes every step.
//
// Blocks up to 32 MiB: by default glibc serves blocks this large with mmap and returns them (or
// the heap's top) to the kernel on free, so each step faulted every page in again, zeroed by the
// kernel: 5–8 % of a small model's step. mallopt keeps freed blocks up to 32 MiB (glibc's largest
// mmap threshold) in the heap.
//
// Larger blocks (the logits and their gradient: 8 × 256 tokens × a vocabulary of 8,192 is 64 MiB)
// glibc always maps fresh and unmaps on free; that was 9 % of the bench's big training step in
// page faults and the kernel's page zeroing. They go through a small pool instead: a freed block
// is kept, and the next allocation of the same size class takes it back. Peak memory is
// unchanged while the sizes repeat; the pool holds at most POOL_SLOTS blocks and POOL_BYTES, and
// gives the oldest back to the kernel first.

enum { LARGE = 32 << 20, CLASS = 2 << 20, POOL_SLOTS = 16 };
static const size_t POOL_BYTES = (size_t)2 << 30;

static struct {
    pthread_mutex_t lock;
    void *block[POOL_SLOTS];   // oldest first
    size_t bytes[POOL_SLOTS];
    int count;
    size_t total;
} pool = {PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t configured = PTHREAD_ONCE_INIT;

static void configure_heap(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, LARGE);    // the largest threshold glibc accepts
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // never give the heap's top back mid-run
#endif
}

// Large blocks are handled in 2 MiB classes, so that sequences of slightly different lengths
// (GRPO's completions) still find each other's blocks.
static size_t size_class(size_t bytes) { return bytes >= LARGE ? (bytes + CLASS - 1) / CLASS * CLASS : bytes; }

// Takes slot i out of the pool (the caller holds the lock) and returns its block.
static void *remove_slot(int i) {
    void *block = pool.block[i];
    pool.total -= pool.bytes[i];
    memmove(&pool.block[i], &pool.block[i + 1], (size_t)(pool.count - i - 1) * sizeof(void *));
    memmove(&pool.bytes[i], &pool.bytes[i + 1], (size_t)(pool.count - i - 1) * sizeof(size_t));
    pool.count--;
    return block;
}

static void *take_from_pool(size_t bytes) {
    void *found = NULL;
    pthread_mutex_lock(&pool.lock);
    for (int i = 0; i < pool.count && !found; i++)
        if (pool.bytes[i] == bytes) found = remove_slot(i);
    pthread_mutex_unlock(&pool.lock);
    return found;
}

void *grove_alloc(size_t bytes) {
    pthread_once(&configured, configure_heap);
    size_t size = size_class(bytes ? bytes : 1);
    void *block = size >= LARGE ? take_from_pool(size) : NULL;
    if (!block && posix_memalign(&block, 64, size) != 0) {
        fprintf(stderr, "grove: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return block;
}

void grove_free(void *block, size_t bytes) {
    size_t size = size_class(bytes ? bytes : 1);
    if (size < LARGE || size > POOL_BYTES) { free(block); return; }
    void *evicted[POOL_SLOTS];
    int evictions = 0;
    pthread_mutex_lock(&pool.lock);
    while (pool.count == POOL_SLOTS || pool.total + size > POOL_BYTES)  // make room: drop the oldest
        evicted[evictions++] = remove_slot(0);
    pool.block[pool.count] = block;
    pool.bytes[pool.count] = size;
    pool.count++;
    pool.total += size;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < evictions; i++) free(evicted[i]);
}
