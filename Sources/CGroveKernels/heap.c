#include "grove_kernels.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Tensor storage: one reserved address range, handed out best-fit, freed blocks coalesced.
//
// A training step frees and re-allocates the same activation sizes in the same order every
// step. Served by malloc, those blocks shared glibc's heap with every other allocation of the
// process (Swift arrays, closures, the thread pool's bookkeeping); on two threads other blocks
// landed in the holes the step's tensors had left, a tensor of the next step no longer fit,
// and the heap grew by fresh pages that the kernel faulted in and zeroed: a big model's
// training step went from 1.46 GB resident on one thread to 2.1–2.7 GB on two, growing with
// the number of steps. Here only tensor storage lives in the range, so its layout depends on
// the order of tensor allocations alone, which is the same on any number of threads, and a
// step reuses the previous step's pages.
//
// The range is reserved without committing memory (MAP_NORESERVE): a page costs RAM when it is
// first written. Freed blocks keep their pages (no fault next step); a free run at the top
// larger than TRIM_BYTES is offered back to the kernel with MADV_FREE: the kernel takes those
// pages when it runs short of memory, and until then the next block there reuses them as they
// are. (MADV_DONTNEED dropped them at once, and a GRPO step, whose generation, reference pass and
// training each free more than 1 GiB at the top, faulted ~2.8 GB of zeroed pages back in every
// step: 0.5–1 s of a 135M model's 12–15 s step.) Where the reservation fails (strict
// overcommit, an address-space limit) or is full, blocks come from posix_memalign instead.

enum { ALIGN = 64 };
static const size_t TRIM_BYTES = (size_t)1 << 30;

typedef struct { size_t start, size; } Run;  // a free run: byte offsets into the range

static struct {
    pthread_mutex_t lock;
    char *base;          // NULL: no range, every block comes from posix_memalign
    size_t capacity;     // bytes reserved
    size_t top;          // bytes of the range handed out at least once (above: untouched, or offered back)
    Run *runs;           // the free runs below `top`, sorted by start, never adjacent
    int count, room;     // runs held, runs the array has room for
} heap = {PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t reserved = PTHREAD_ONCE_INIT;

static void reserve_range(void) {
    // The largest of these that the system grants: address space only, no memory.
    for (size_t gib = 1024; gib >= 16 && !heap.base; gib /= 4) {
        void *range = mmap(NULL, gib << 30, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (range != MAP_FAILED) { heap.base = range; heap.capacity = gib << 30; }
    }
}

static int in_range(const void *block) {
    return heap.base && (const char *)block >= heap.base && (const char *)block < heap.base + heap.capacity;
}

static void remove_run(int i) {
    memmove(&heap.runs[i], &heap.runs[i + 1], (size_t)(heap.count - i - 1) * sizeof(Run));
    heap.count--;
}

// Offset of a block of `size` bytes, or SIZE_MAX when the range cannot hold it. Best fit: the
// smallest free run that holds it (lowest address among equals); a run ending at `top` may be
// extended; otherwise the block goes on top.
static size_t take(size_t size) {
    int best = -1;
    for (int i = 0; i < heap.count; i++)
        if (heap.runs[i].size >= size && (best < 0 || heap.runs[i].size < heap.runs[best].size)) best = i;
    if (best >= 0) {
        size_t start = heap.runs[best].start;
        heap.runs[best].start += size;
        heap.runs[best].size -= size;
        if (heap.runs[best].size == 0) remove_run(best);
        return start;
    }
    // The top run is too small: grow it (it stays free when the range cannot hold the block).
    int grow = heap.count > 0 && heap.runs[heap.count - 1].start + heap.runs[heap.count - 1].size == heap.top;
    size_t start = grow ? heap.runs[heap.count - 1].start : heap.top;
    if (size > heap.capacity - start) return SIZE_MAX;
    if (grow) remove_run(heap.count - 1);
    heap.top = start + size;
    return start;
}

// Returns [start, start + size) to the free runs, merged with the runs it touches.
static void give_back(size_t start, size_t size) {
    int lo = 0, hi = heap.count;  // first run starting after `start`
    while (lo < hi) { int mid = (lo + hi) / 2; if (heap.runs[mid].start < start) lo = mid + 1; else hi = mid; }
    int i = lo;
    if (i > 0 && heap.runs[i - 1].start + heap.runs[i - 1].size == start) {  // merge with the run before
        i--;
        heap.runs[i].size += size;
    } else {
        if (heap.count == heap.room) {
            heap.room = heap.room ? 2 * heap.room : 256;
            heap.runs = realloc(heap.runs, (size_t)heap.room * sizeof(Run));
            if (!heap.runs) { fprintf(stderr, "grove: out of memory\n"); abort(); }
        }
        memmove(&heap.runs[i + 1], &heap.runs[i], (size_t)(heap.count - i) * sizeof(Run));
        heap.runs[i] = (Run){start, size};
        heap.count++;
    }
    if (i + 1 < heap.count && heap.runs[i].start + heap.runs[i].size == heap.runs[i + 1].start) {  // and the one after
        heap.runs[i].size += heap.runs[i + 1].size;
        remove_run(i + 1);
    }
    // A large free run at the top is offered back to the kernel (from its first whole page on).
    Run last = heap.runs[heap.count - 1];
    if (last.start + last.size == heap.top && last.size > TRIM_BYTES) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), from = (last.start + page - 1) / page * page;
        madvise(heap.base + from, heap.top - from, MADV_FREE);
        heap.top = last.start;
        remove_run(heap.count - 1);
    }
}

// Bytes a block of `bytes` occupies: a whole number of cache lines, at least one.
static size_t block_size(size_t bytes) { return bytes ? (bytes + ALIGN - 1) / ALIGN * ALIGN : ALIGN; }

void *grove_alloc(size_t bytes) {
    pthread_once(&reserved, reserve_range);
    size_t size = block_size(bytes);
    void *block = NULL;
    if (heap.base) {
        pthread_mutex_lock(&heap.lock);
        size_t start = take(size);
        pthread_mutex_unlock(&heap.lock);
        if (start != SIZE_MAX) block = heap.base + start;
    }
    if (!block && posix_memalign(&block, ALIGN, size) != 0) {
        fprintf(stderr, "grove: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return block;
}

void grove_free(void *block, size_t bytes) {
    if (!in_range(block)) { free(block); return; }
    size_t size = block_size(bytes);
    pthread_mutex_lock(&heap.lock);
    give_back((size_t)((char *)block - heap.base), size);
    pthread_mutex_unlock(&heap.lock);
}
