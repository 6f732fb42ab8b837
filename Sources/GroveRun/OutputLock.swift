import Foundation

/// An exclusive lock on a run's output folder (`flock` on `output_dir/.grove.lock`), held for
/// the whole run, so two runs can never write one folder's checkpoints, `final/` and run.sqlite
/// at once. The kernel drops it when the process dies, however it dies.
final class OutputLock {
    private let fd: Int32

    /// Takes the lock, or throws naming the process that holds it.
    init(folder: URL) throws {
        let path = folder.appendingPathComponent(".grove.lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunError("\(path): cannot open the run's lock file: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw RunError("\(folder.path) is in use by another grove run\(holder.isEmpty ? "" : " (process \(holder))"): wait for it to end, or choose another output_dir")
        }
        // Who holds it, for the message above (the lock, not the text, is what excludes).
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
