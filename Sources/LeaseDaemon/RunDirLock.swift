import DiskLeaseClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The run directory belongs to one daemon at a time: an exclusive `flock` on
/// `<run_dir>/diskleased.pid`, held for the life of the process (the descriptor is never
/// closed). A second daemon on the same run directory refuses to start before it touches the
/// socket or the state file.
///
/// The lock is also what makes a restart safe after `kill -9`: the kernel releases it only
/// when the old process has fully exited, and exiting waits for its outstanding AIO
/// (exit_aio), so the next incarnation writes nothing before the previous one's last write
/// has landed (docs/AGREEMENT.md, assumptions).
public enum RunDirLock {
    public static let fileName = "diskleased.pid"

    /// Checks the directory's owner and mode, takes the lock and writes our pid.
    public static func acquire(_ runDir: String) throws(WireError) {
        var st = stat()
        guard stat(runDir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw WireError(.io, "run dir \(runDir): not a directory")
        }
        guard st.st_uid == geteuid() else {
            throw WireError(.permission, "run dir \(runDir) is owned by uid \(st.st_uid), not by us (uid \(geteuid()))")
        }
        guard st.st_mode & S_IWOTH == 0 else {
            throw WireError(
                .permission,
                "run dir \(runDir) is writable by others (mode \(String(st.st_mode & 0o7777, radix: 8))): "
                    + "anyone could replace the socket or the state file")
        }
        let path = (runDir as NSString).appendingPathComponent(fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WireError(.io, "\(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            close(fd)
            throw WireError(
                .exists, "run dir \(runDir) is in use by another diskleased (pid \(holder ?? "?")); not starting")
        }
        let line = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, line.count, 0) }
        // fd stays open: the lock lives as long as this process.
    }
}
