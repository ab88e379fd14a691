/* ------------------------------------------------------------------------------
 * exprc's thread pool (C11 atomics and POSIX threads; see docs/internals/c-back-end.md).
 *
 * The calling thread is worker 0 and takes pieces like the others; pieces go out through
 * an atomic counter. Each worker has a phase word: 2g when it is done with job g or was
 * fenced out of it, 2g - 1 while it is inside job g. A worker that sees job g enters with
 * CAS(2g - 2 -> 2g - 1); the caller, after running out of pieces, fences every worker
 * that has not entered with CAS(2g - 2 -> 2g) and waits only for those inside, so it
 * never waits for a thread that is asleep or not yet scheduled. A job's fields are read
 * only between a successful enter and the done store, so the next job never overwrites
 * them under a worker.
 * ---------------------------------------------------------------------------- */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* At most this many threads, the caller included. */
#define EXPRC_MAX_THREADS 256
/* An idle worker polls for the next job this long (ns) before it sleeps: back-to-back jobs
   (the kernels of one call) find it awake; between calls it sleeps at once (rest). */
#define EXPRC_SPIN_NS 50000

#if defined(__x86_64__) || defined(__i386__)
#define EXPRC_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define EXPRC_PAUSE() __asm__ __volatile__("yield")
#else
#define EXPRC_PAUSE() ((void)0)
#endif

typedef struct {
    _Alignas(64) _Atomic uint64_t phase;  /* 2g: out of job g; 2g - 1: inside it */
    pthread_t thread;
    int index;                            /* 1.. (the caller is 0) */
} exprc_worker;

static struct {
    pthread_mutex_t lock;            /* held by the thread running a job on the pool */
    _Atomic uint64_t gen;            /* the latest job's number (0: none yet) */
    _Atomic uint32_t signal;         /* futex word: changes with every job */
    _Atomic int sleepers;            /* workers asleep (or going to sleep) on signal */
    _Atomic uint64_t rested;         /* the job after which the caller said the pool may rest */
    _Atomic int active;              /* workers taking part in the latest job */
    _Atomic int threads;             /* the threads a job may use, the caller's included */
    int started;                     /* workers created in this process */
    exprc_task task;                 /* the job: read only by workers inside it */
    void *context;
    int64_t pieces;
    _Atomic int64_t next;            /* the next piece to hand out */
    exprc_worker workers[EXPRC_MAX_THREADS];
} exprc_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .threads = 1};

/* Set on pool threads, and on a caller while it runs a job: a job started from inside a
   job runs serially. */
static _Thread_local int exprc_inside;
/* Whether this thread ran a job on the pool since it last let the pool rest. */
static _Thread_local int exprc_dispatched;

static int64_t exprc_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void exprc_sleep_on(_Atomic uint32_t *word, uint32_t seen)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    (void)word, (void)seen;
    sched_yield();  /* no futex: poll politely */
#endif
}

static void exprc_wake_all(_Atomic uint32_t *word)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

static void exprc_run_pieces(void)
{
    const exprc_task task = exprc_pool.task;
    void *const context = exprc_pool.context;
    const int64_t pieces = exprc_pool.pieces;
    for (int64_t p; (p = atomic_fetch_add_explicit(&exprc_pool.next, 1, memory_order_relaxed)) < pieces;)
        task(context, p);
}

static void *exprc_worker_main(void *arg)
{
    exprc_worker *self = arg;
    exprc_inside = 1;
    uint64_t seen = atomic_load(&exprc_pool.gen);
    int64_t idle_since = exprc_now_ns();
    unsigned backoff = 1;
    for (;;) {
        const uint64_t g = atomic_load_explicit(&exprc_pool.gen, memory_order_acquire);
        if (g != seen) {
            seen = g;
            uint64_t expected = 2 * g - 2;
            if (atomic_compare_exchange_strong(&self->phase, &expected, 2 * g - 1)) {
                exprc_run_pieces();
                atomic_store_explicit(&self->phase, 2 * g, memory_order_release);
            }
            idle_since = exprc_now_ns();
            backoff = 1;
            continue;
        }
        if (self->index <= atomic_load_explicit(&exprc_pool.active, memory_order_relaxed)
            && atomic_load_explicit(&exprc_pool.rested, memory_order_relaxed) != g
            && exprc_now_ns() - idle_since < EXPRC_SPIN_NS) {
            for (unsigned i = 0; i < backoff; ++i) EXPRC_PAUSE();
            if (backoff < 16) backoff *= 2;
            continue;
        }
        /* sleep until the next job; the dispatcher wakes sleepers after publishing it */
        atomic_fetch_add(&exprc_pool.sleepers, 1);
        const uint32_t signal = atomic_load(&exprc_pool.signal);
        if (atomic_load(&exprc_pool.gen) == seen)
            exprc_sleep_on(&exprc_pool.signal, signal);
        atomic_fetch_sub(&exprc_pool.sleepers, 1);
        idle_since = exprc_now_ns();
        backoff = 1;
    }
    return NULL;
}

/* Creates workers up to "count" (the caller holds the lock); returns how many there are. */
static int exprc_start_workers(int count)
{
    if (count <= exprc_pool.started)
        return count;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* signals stay with the caller's threads */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const uint64_t g = atomic_load(&exprc_pool.gen);
    while (exprc_pool.started < count) {
        exprc_worker *w = &exprc_pool.workers[exprc_pool.started];
        w->index = exprc_pool.started + 1;
        atomic_store(&w->phase, 2 * g);  /* out of every job so far */
        if (pthread_create(&w->thread, &attr, exprc_worker_main, w) != 0)
            break;
        ++exprc_pool.started;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return exprc_pool.started;
}

/* Runs task(context, piece) for piece in 0..pieces on the pool, this thread included. */
static void exprc_pool_parallel(exprc_task task, void *context, int64_t pieces)
{
    int want = atomic_load_explicit(&exprc_pool.threads, memory_order_relaxed) - 1;
    if (want > pieces - 1)
        want = pieces - 1 > 0 ? (int)(pieces - 1) : 0;
    /* Nested, or another thread's job under way: serially on this thread. That thread
       exists anyway; waiting for the pool would serialise the callers, and their own
       threads are all the cores they take. */
    if (want <= 0 || exprc_inside || pthread_mutex_trylock(&exprc_pool.lock) != 0) {
        for (int64_t p = 0; p < pieces; ++p) task(context, p);
        return;
    }
    want = exprc_start_workers(want);
    const uint64_t g = atomic_load_explicit(&exprc_pool.gen, memory_order_relaxed) + 1;
    exprc_pool.task = task;
    exprc_pool.context = context;
    exprc_pool.pieces = pieces;
    atomic_store_explicit(&exprc_pool.next, 0, memory_order_relaxed);
    for (int i = want; i < exprc_pool.started; ++i)  /* not in this job: fenced out at once */
        atomic_store_explicit(&exprc_pool.workers[i].phase, 2 * g, memory_order_relaxed);
    atomic_store_explicit(&exprc_pool.active, want, memory_order_relaxed);
    atomic_store(&exprc_pool.gen, g);
    atomic_fetch_add(&exprc_pool.signal, 1);
    if (atomic_load(&exprc_pool.sleepers) > 0)
        exprc_wake_all(&exprc_pool.signal);
    exprc_inside = 1;
    exprc_run_pieces();
    exprc_inside = 0;
    for (int i = 0; i < want; ++i) {
        _Atomic uint64_t *phase = &exprc_pool.workers[i].phase;
        uint64_t expected = 2 * g - 2;
        if (atomic_compare_exchange_strong(phase, &expected, 2 * g))
            continue;  /* it had not entered: fenced out */
        while (atomic_load_explicit(phase, memory_order_acquire) != 2 * g)
            EXPRC_PAUSE();
    }
    exprc_dispatched = 1;
    pthread_mutex_unlock(&exprc_pool.lock);
}

/* Spinning workers go to sleep now: called when a call into exprc returns, so that no
   worker holds a core while Python, NumPy or BLAS runs. */
void exprc_pool_rest(void)
{
    if (exprc_dispatched) {
        exprc_dispatched = 0;
        atomic_store_explicit(&exprc_pool.rested, atomic_load(&exprc_pool.gen), memory_order_relaxed);
    }
}

/* The number of threads a job may use, the caller's included. */
int exprc_get_num_threads(void)
{
    return atomic_load(&exprc_pool.threads);
}

/* Sets it (clamped to 1..EXPRC_MAX_THREADS); workers are created at the next job that
   can use them. */
void exprc_set_num_threads(int n)
{
    atomic_store(&exprc_pool.threads, n < 1 ? 1 : (n > EXPRC_MAX_THREADS ? EXPRC_MAX_THREADS : n));
}

/* The workers created in this process so far (for tests). */
int exprc_pool_workers(void)
{
    return exprc_pool.started;
}

/* In a child of fork only the forking thread exists: forget the parent's workers, so the
   child creates its own at its first job. */
static void exprc_pool_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    exprc_pool.lock = fresh;
    exprc_pool.started = 0;
    atomic_store(&exprc_pool.gen, 0);
    atomic_store(&exprc_pool.signal, 0);
    atomic_store(&exprc_pool.sleepers, 0);
    atomic_store(&exprc_pool.rested, 0);
    atomic_store(&exprc_pool.active, 0);
    exprc_inside = 0;
    exprc_dispatched = 0;
}

__attribute__((constructor)) static void exprc_pool_init(void)
{
    pthread_atfork(NULL, NULL, exprc_pool_after_fork);
}
