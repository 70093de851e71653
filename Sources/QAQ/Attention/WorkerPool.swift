import CQAQSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A persistent pool of worker threads for one caller at a time: ``run(items:_:)`` hands out
/// `items` work items dynamically (an atomic counter) to the caller and `threads − 1` workers,
/// and returns when all are done. Between jobs a worker spins for a short while (decode
/// calls for consecutive layers follow each other within microseconds), then parks on a
/// condition variable. Worker i may be pinned to a logical CPU; the caller is never re-pinned.
///
/// Not reentrant: one ``run(items:_:)`` at a time (the cache calls it under its one-writer-
/// per-layer contract; a cache owns its pool).
public final class WorkerPool: @unchecked Sendable {
    /// Threads taking part, the caller included.
    public let threads: Int
    /// The CPUs workers were pinned to (empty: unpinned), and pinning failures (errno, CPU).
    public let cpus: [Int]
    public private(set) var pinningFailures: [(cpu: Int, errno: Int32)] = []

    /// Spin iterations before a worker parks (≈ 50–100 µs).
    static let spinIterations = 20_000

    private let generation = Atomic<Int>(0)
    private let nextItem = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var itemCount = 0
    private var job: RawJob?
    private var jobContext: UnsafeRawPointer?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private var handles: [pthread_t] = []
    /// (CPU, pin result) per started worker, under `mutex` (a pthread mutex, which the thread
    /// sanitizer understands; it flagged `Synchronization.Mutex` here on Linux).
    private var pinResults: [(Int, Int32)] = []

    /// Starts `threads − 1` workers; worker i (1-based) pinned to `cpus[i % cpus.count]` when
    /// `cpus` is not empty.
    public init(threads: Int, cpus: [Int] = []) {
        self.threads = max(1, threads)
        self.cpus = cpus
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for i in 1..<self.threads {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: i)).toOpaque()
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(start.index)
                return nil
            }, box)
            if rc == 0 { handles.append(handle) } else { Unmanaged<WorkerStart>.fromOpaque(box).release() }
        }
        // Wait until every worker has tried to pin itself, so failures are known.
        while true {
            pthread_mutex_lock(mutex)
            let reported = pinResults.count
            if reported >= handles.count {
                pinningFailures = pinResults.filter { $0.1 != 0 }.map { (cpu: $0.0, errno: $0.1) }
            }
            pthread_mutex_unlock(mutex)
            if reported >= handles.count { break }
            sched_yield()
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for h in handles { pthread_join(h, nil) }
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(wake)
        mutex.deallocate()
        wake.deallocate()
    }

    /// Runs `body(worker, item)` for every item in 0..<items, spread over the caller (worker 0)
    /// and the pool's workers. Returns when every item is done. (A C-convention job over a
    /// pointer to `body`: see ``run(items:context:_:)``.)
    public func run(items: Int, _ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var body = body
            withUnsafePointer(to: &body) { p in
                run(items: items, context: UnsafeRawPointer(p)) { raw, worker, i in
                    raw!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(worker, i)
                }
            }
        }
    }

    /// A job as a C function over a context pointer: `body(context, worker, item)`.
    public typealias RawJob = @convention(c) (UnsafeRawPointer?, Int, Int) -> Void

    /// Runs `body(context, worker, item)` for every item, as ``run(items:_:)``: the pool's one
    /// job representation. No closure is stored for the workers, so nothing is allocated per
    /// call. `context` must stay valid until the call returns.
    public func run(items: Int, context: UnsafeRawPointer, _ body: RawJob) {
        guard items > 0 else { return }
        if handles.isEmpty || items == 1 {
            for i in 0..<items { body(context, 0, i) }
            return
        }
        job = body
        jobContext = context
        start(items)
        drain(worker: 0)
        waitForWorkers()
        job = nil
        jobContext = nil
    }

    /// Publishes a job of `items` items to the workers (the job set before this call).
    private func start(_ items: Int) {
        itemCount = items
        nextItem.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
    }

    private func waitForWorkers() {
        var spins = 0
        while finished.load(ordering: .acquiring) < handles.count {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
    }

    private func drain(worker: Int) {
        guard let body = job else { return }
        let context = jobContext
        while true {
            let i = nextItem.add(1, ordering: .relaxed).oldValue
            if i >= itemCount { return }
            body(context, worker, i)
        }
    }

    private func workerLoop(_ index: Int) {
        var rc: Int32 = 0
        var cpu = -1
        if !cpus.isEmpty {
            cpu = cpus[index % cpus.count]
            rc = qaq_pin_current_thread(Int32(cpu))
        }
        pthread_mutex_lock(mutex)
        pinResults.append((cpu, rc))
        pthread_mutex_unlock(mutex)
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .relaxed) && spins < WorkerPool.spinIterations {
                spins += 1
            }
            if generation.load(ordering: .acquiring) == seen {
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .relaxed) {
                    pthread_cond_wait(wake, mutex)
                }
                pthread_mutex_unlock(mutex)
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = generation.load(ordering: .acquiring)
            drain(worker: index)
            finished.add(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart {
    unowned(unsafe) let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}
