import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One run of `/bin/sh -c command` with `input` on its stdin, as the external reward needs it:
/// no SIGPIPE, no deadlock between the pipes, and no process of the program left behind.
///
/// The program runs in its own process group. That group is killed when the program exits
/// (children it left in the background end with it), at the timeout, by `killAll`, and when
/// Grove dies even by SIGKILL: a watcher in the group waits for end-of-file on a pipe that only
/// Grove holds open (a parent-death signal would reach only the direct child, and fires when
/// the spawning *thread* exits).
struct ProgramRun {
    var output = Data(), errors = Data()
    var timedOut = false
    /// The raw wait status; nil if the program was reaped elsewhere.
    var waitStatus: Int32?
    /// The program did not read all of its input (it closed stdin, or ended, first).
    var stoppedReading = false

    /// Runs the program; throws a message when it cannot be started.
    static func run(_ command: String, input: Data, timeout: TimeInterval) throws -> ProgramRun {
        _ = ignoreSIGPIPE
        let stdin = try pipe(), stdout = try pipe(), stderr = try pipe(), watch = try pipe()
        let pid: pid_t
        do {
            defer { [stdin.read, stdout.write, stderr.write, watch.read].forEach { _ = close($0) } }
            pid = try spawn(command, stdio: [stdin.read, stdout.write, stderr.write, watch.read])
        } catch {
            [stdin.write, stdout.read, stderr.read, watch.write].forEach { _ = close($0) }
            throw error
        }
        running.insert(pid)
        defer { running.remove(pid); close(watch.write) }
        var run = ProgramRun()
        run.exchange(pid: pid, stdin: stdin.write, stdout: stdout.read, stderr: stderr.read, input: input, timeout: timeout)
        return run
    }

    /// Ends every program running now (for a signal handler about to exit).
    static func killAll() {
        for group in running.all { kill(-group, SIGKILL) }
    }

    /// Writes to a program that stopped reading then fail with EPIPE instead of killing Grove.
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Process groups of the programs running now.
    static let running = ProcessGroups()

    /// Fd 3 is the watch pipe: a background subshell kills the whole group (`kill 0`) at its
    /// end-of-file; the command then runs exactly as `/bin/sh -c command` would run it.
    static let wrapper = #"(read line <&3; kill -KILL 0) </dev/null >/dev/null 2>&1 & exec 3<&-; exec /bin/sh -c "$1""#

    static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else { throw ProgramRunError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        // Close-on-exec, so that other programs Grove starts do not hold these ends open (the spawn dups them to 0–3).
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    static func spawn(_ command: String, stdio: [Int32]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, fd) in stdio.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(target)) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, default signal handling and no blocked signals, whatever Grove ignores.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all); sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        let words: [String] = ["/bin/sh", "-c", wrapper, "grove-reward", command]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
        guard status == 0 else { throw ProgramRunError("cannot start `\(command)`: \(String(cString: strerror(status)))") }
        return pid
    }

    /// Writes the input while reading both outputs, until the program has exited and its outputs
    /// are closed, or the timeout.
    mutating func exchange(pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32, input: Data, timeout: TimeInterval) {
        for fd in [stdin, stdout, stderr] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var fds = [pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0), pollfd(fd: stdout, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)]
        var written = 0
        if input.isEmpty { finish(&fds[0]) }
        let deadline = Date(timeIntervalSinceNow: timeout)
        var exited = false
        while !exited || fds[1].fd >= 0 || fds[2].fd >= 0 {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 {
                timedOut = true
                kill(-pid, SIGKILL)
                if !exited { _ = waitpid(pid, nil, 0) }
                read(&fds[2], into: &errors)
                fds.forEach { if $0.fd >= 0 { close($0.fd) } }
                return
            }
            // Until the program has exited, look every 20 ms: children it left may hold its outputs open.
            let wait = exited ? left : min(left, 0.02)
            if poll(&fds, nfds_t(fds.count), Int32((wait * 1000).rounded(.up))) > 0 {
                if fds[0].revents != 0 { write(&fds[0], input, &written) }
                if fds[1].revents != 0 { read(&fds[1], into: &output) }
                if fds[2].revents != 0 { read(&fds[2], into: &errors) }
            }
            if !exited {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid || (reaped < 0 && errno != EINTR) {
                    exited = true
                    waitStatus = reaped == pid ? status : nil
                    kill(-pid, SIGKILL)
                }
            }
        }
        if fds[0].fd >= 0 { stoppedReading = true; finish(&fds[0]) }
    }

    mutating func write(_ entry: inout pollfd, _ input: Data, _ written: inout Int) {
        let n = input.withUnsafeBytes { Glibc.write(entry.fd, $0.baseAddress! + written, min(input.count - written, 65_536)) }
        if n > 0 {
            written += n
            if written == input.count { finish(&entry) }
        } else if n < 0 && errno != EAGAIN && errno != EINTR {
            stoppedReading = true  // EPIPE: its stdin is closed
            finish(&entry)
        }
    }

    /// Reads what is there; closes the pipe at its end.
    func read(_ entry: inout pollfd, into data: inout Data) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while entry.fd >= 0 {
            let n = Glibc.read(entry.fd, &buffer, buffer.count)
            if n > 0 {
                data.append(contentsOf: buffer[..<n])
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                finish(&entry)
            } else if errno == EAGAIN {
                return
            }
        }
    }

    /// Closes a pipe and takes it out of the poll set.
    func finish(_ entry: inout pollfd) {
        close(entry.fd)
        entry.fd = -1
    }

    /// How the program ended, for error messages; nil for exit status 0.
    var failure: String? {
        guard let status = waitStatus else { return "ended with an unknown status" }
        if status & 0x7f != 0 { return "was killed by signal \(status & 0x7f)" }
        let code = (status >> 8) & 0xff
        return code == 0 ? nil : "exited with status \(code)"
    }
}

struct ProgramRunError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A set of process group ids, shared between the threads that run programs and `killAll`.
final class ProcessGroups: @unchecked Sendable {
    private var groups = Set<pid_t>()
    private let lock = NSLock()

    func insert(_ group: pid_t) { lock.withLock { _ = groups.insert(group) } }
    func remove(_ group: pid_t) { lock.withLock { _ = groups.remove(group) } }
    var all: [pid_t] { lock.withLock { Array(groups) } }
}
