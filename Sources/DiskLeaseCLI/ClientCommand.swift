import ArgumentParser
import DiskLeaseClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `disklease client`: every call of the daemon's API, as text or `--json` (the wire response).
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Talk to a local diskleased over its socket.",
        discussion: """
            Leases belong to the process that holds the connection: a plain `acquire` exits at
            once and so releases at once. Use `command` to hold a lease while a program runs
            (the program inherits the connection and is the lease holder, as with sanlock's
            `client command`), or the Swift library DiskLeaseClient.
            """,
        subcommands: [
            ClientRegister.self, ClientAddLockspace.self, ClientRemLockspace.self, ClientAcquire.self,
            ClientCommandRun.self,
            ClientConvert.self, ClientRelease.self, ClientStatus.self, ClientHostStatus.self, ClientInquire.self,
            ClientRequest.self, ClientRaw.self, ClientFlood.self, ClientVersion.self,
        ])
}

struct ClientOptions: ParsableArguments {
    @Option(help: "The daemon's run directory.") var runDir = "/run/disklease"
    @Flag(help: "Print the daemon's JSON response.") var json = false

    func connect() throws -> DiskLeaseClient {
        do {
            return try DiskLeaseClient(runDir: runDir)
        } catch {
            throw CLIFailure(error.message, .noInput)
        }
    }

    /// Sends `q`, prints the response as JSON when asked, and turns a failure into the CLI's
    /// one-line error and exit status.
    func call(_ client: DiskLeaseClient, _ q: Request) throws -> Response {
        let r: Response
        do {
            r = try client.call(q)
        } catch {
            throw CLIFailure(error.description, .io)
        }
        if json { FileHandleStream.stdout.write(String(decoding: Wire.line(r), as: UTF8.self)) }
        if !r.ok, let e = r.error { throw CLIFailure(e.message, e.code.exitStatus) }
        return r
    }
}

extension ErrorCode {
    var exitStatus: ExitStatus {
        switch self {
        case .badRequest, .unsupportedVersion, .tooLarge, .permission, .notOwner: return .usage
        case .noLockspace: return .noInput
        case .joining, .busy, .timeout, .fenced: return .busy
        case .io, .internalError: return .io
        case .corrupt: return .corrupt
        case .exists: return .exists
        }
    }
}

extension ResourceSpec {
    func request(_ op: RequestOp) -> Request {
        var q = Request(op: op)
        q.lockspace = lockspace
        q.resource = name
        q.path = path
        q.offset = offset
        q.shared = shared
        q.lver = lver
        return q
    }
}

struct ClientRegister: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register", abstract: "Check the connection and print the pid the daemon sees.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            let r = try options.call(try options.connect(), Request(op: .register))
            if !options.json { FileHandleStream.stdout.write("registered pid \(r.pid ?? 0)\n") }
        }
    }
}

/// Acquire-then-act commands for one connection: `convert` and `release` act on a lease this
/// same invocation holds (`--acquire` first), since a lease belongs to its connection.
struct ClientConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract:
            "Acquire RESOURCE in its given mode, convert it (SH→EX, or EX→SH with --to-shared), print both tokens.",
        discussion:
            "Leases belong to connections, so this shows conversion within one invocation; programs convert through "
            + "the library or a session."
    )
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset[:SH]") var resource: ResourceSpec
    @Flag(help: "Convert EX to SH (default: SH to EX).") var toShared = false
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            let client = try options.connect()
            let first = try options.call(client, resource.request(.acquire))
            var q = resource.request(.convert)
            q.shared = toShared
            let second = try options.call(client, q)
            if !options.json {
                FileHandleStream.stdout.write(
                    "acquired \(resource.shared ? "SH" : "EX") lver \(first.lver ?? 0), "
                        + "converted to \(toShared ? "SH" : "EX") lver \(second.lver ?? 0)\n"
                )
            }
        }
    }
}

struct ClientRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a lease held by another process (root, --pid P) or an orphan (--pid 0).",
        discussion: "A process's own leases are released by its connection (release request, or exit).")
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset") var resource: ResourceSpec
    @Option(help: "The holder's pid; 0 for an orphan.") var pid: Int32
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            var q = resource.request(.release)
            q.pid = pid
            _ = try options.call(try options.connect(), q)
            if !options.json {
                FileHandleStream.stdout.write(
                    "released \(resource.lockspace):\(resource.name) of \(pid == 0 ? "an orphan" : "pid \(pid)")\n")
            }
        }
    }
}

struct ClientAddLockspace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-lockspace", abstract: "Join a lockspace (in the background unless --wait).")
    @Option(name: .customShort("s"), help: "LOCKSPACE = name:host_id:path:offset") var lockspace: LockspaceSpec
    @Flag(help: "Wait until joined and past the join wait (ballots possible).") var wait = false
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            var q = Request(op: .addLockspace)
            q.lockspace = lockspace.name
            q.hostId = lockspace.hostID
            q.path = lockspace.path
            q.offset = lockspace.offset
            q.wait = wait
            let r = try options.call(try options.connect(), q)
            if !options.json, let l = r.lockspaces?.first {
                FileHandleStream.stdout.write(
                    "lockspace \(l.name) host_id \(l.hostId): \(l.state)\(l.detail.isEmpty ? "" : " (\(l.detail))")\n")
            }
        }
    }
}

struct ClientRemLockspace: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rem-lockspace", abstract: "Leave a lockspace.")
    @Argument(help: "Lockspace name.") var name: String
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            var q = Request(op: .remLockspace)
            q.lockspace = name
            _ = try options.call(try options.connect(), q)
            if !options.json { FileHandleStream.stdout.write("left \(name)\n") }
        }
    }
}

struct AcquireOptions: ParsableArguments {
    @Option(
        name: .customShort("r"),
        help: "RESOURCE = lockspace:name:path:offset[:lver|:SH]; repeat -r for several leases, all or none.")
    var resources: [ResourceSpec]
    @Flag(help: "Fail at once (exit 75) if the lease is held.") var noWait = false
    @Option(help: "Give up after this many milliseconds (for each lease).") var timeoutMs: Int?
    @Flag(help: "Keep the lease as an orphan if the holder exits without releasing.") var persistent = false

    func validate() throws {
        if resources.isEmpty { throw ValidationError("give at least one -r RESOURCE") }
    }

    /// Acquires every lease in order on `client`'s connection and prints one line each. If
    /// one fails, the error is thrown and this process's exit closes the connection, which
    /// releases those already acquired (unless persistent): all or none, as sanlock's list.
    func acquireAll(_ client: DiskLeaseClient, _ options: ClientOptions) throws -> [UInt64] {
        var lvers: [UInt64] = []
        for resource in resources {
            var q = resource.request(.acquire)
            q.wait = !noWait
            q.timeoutMs = timeoutMs
            q.persistent = persistent
            let r = try options.call(client, q)
            lvers.append(r.lver ?? 0)
            if !options.json {
                FileHandleStream.stdout.write("acquired \(resource.lockspace):\(resource.name) lver \(r.lver ?? 0)\n")
            }
        }
        return lvers
    }
}

struct ClientAcquire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acquire",
        abstract:
            "Acquire and print the fencing token (lver). The lease is released when this command exits, unless "
            + "--persistent."
    )
    @OptionGroup var acquire: AcquireOptions
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            _ = try acquire.acquireAll(try options.connect(), options)
        }
    }
}

struct ClientCommandRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "command",
        abstract: "Acquire, then exec PROGRAM holding the lease; the lease goes when PROGRAM exits.",
        discussion:
            "PROGRAM keeps this process's pid and connection, so it is the lease holder the daemon fences. "
            + "DISKLEASE_LVER holds the fencing tokens, one per -r, in order."
    )
    @OptionGroup var acquire: AcquireOptions
    @OptionGroup var options: ClientOptions
    @Argument(parsing: .captureForPassthrough, help: "-- PROGRAM [ARGS...]") var program: [String] = []

    func run() throws {
        try reporting {
            let argv = program.first == "--" ? Array(program.dropFirst()) : program
            guard let exe = argv.first else { throw CLIFailure("client command: no PROGRAM given", .usage) }
            let client = try options.connect()
            let lvers = try acquire.acquireAll(client, options)
            setenv("DISKLEASE_LVER", lvers.map(String.init).joined(separator: " "), 1)
            var cargs = argv.map { strdup($0) } + [nil]
            execvp(exe, &cargs)
            throw CLIFailure("client command: cannot exec \(exe): \(String(cString: strerror(errno)))", .noInput)
        }
    }
}

struct ClientStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Lockspaces and every lease held through the daemon.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            let r = try options.call(try options.connect(), Request(op: .status))
            if options.json { return }
            for l in r.lockspaces ?? [] {
                FileHandleStream.stdout.write(
                    "lockspace \(l.name) host_id \(l.hostId) generation \(l.generation) \(l.state) reads=\(l.readMode) "
                        + "renewed \(String(format: "%.1f", l.renewalAgeSeconds))s ago"
                        + "\(l.detail.isEmpty ? "" : " (\(l.detail))")\n"
                )
            }
            for x in r.leases ?? [] { FileHandleStream.stdout.write(leaseLine(x)) }
        }
    }
}

struct ClientVersion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "The running daemon's version and capabilities.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            let r = try options.call(try options.connect(), Request(op: .version))
            if options.json { return }
            FileHandleStream.stdout.write(
                "diskleased \(r.version ?? "?") (client \(DiskLeaseVersion.string)): "
                    + "\((r.capabilities ?? []).joined(separator: " "))\n")
        }
    }
}

func leaseLine(_ x: LeaseInfo) -> String {
    var flags: [String] = [x.shared ? "SH" : "EX"]
    if x.persistent { flags.append("persistent") }
    if x.orphan { flags.append("orphan") }
    if x.releaseRequested { flags.append("release-requested") }
    return "lease \(x.lockspace):\(x.resource) lver \(x.lver) pid \(x.pid) \(flags.joined(separator: ","))\n"
}

struct ClientHostStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host-status", abstract: "Every host seen in a lockspace, with its state.")
    @Argument(help: "Lockspace name.") var name: String
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            var q = Request(op: .hostStatus)
            q.lockspace = name
            let r = try options.call(try options.connect(), q)
            if options.json { return }
            for h in r.hosts ?? [] {
                FileHandleStream.stdout.write(
                    "host_id \(h.hostId) \(h.state) generation \(h.generation) timestamp \(h.timestamp) \(h.name)\n")
            }
        }
    }
}

struct ClientInquire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inquire", abstract: "The leases a process holds (root may name any pid).")
    @Option(help: "The process (default: this one, which holds none).") var pid: Int32?
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            var q = Request(op: .inquire)
            q.pid = pid
            let r = try options.call(try options.connect(), q)
            if !options.json { for x in r.leases ?? [] { FileHandleStream.stdout.write(leaseLine(x)) } }
        }
    }
}

struct ClientRequest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Ask the current owner's host to release a lease (request record + host bitmap).")
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset[:lver]") var resource: ResourceSpec
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            _ = try options.call(try options.connect(), resource.request(.request))
            if !options.json { FileHandleStream.stdout.write("requested \(resource.lockspace):\(resource.name)\n") }
        }
    }
}

/// Reads requests (JSON lines) from stdin and prints each response: a session on one
/// connection, for scripts and for trying the wire protocol by hand.
struct ClientRaw: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Send JSON request lines from stdin on one connection; print each response line.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try reporting {
            let client = try options.connect()
            while let line = readLine() {
                guard let q = try? Wire.decoder().decode(Request.self, from: Data(line.utf8)) else {
                    throw CLIFailure("session: not a request: \(line.prefix(80))", .usage)
                }
                let r: Response
                do throws(WireError) { r = try client.call(q) } catch { throw CLIFailure(error.description, .io) }
                FileHandleStream.stdout.write(String(decoding: Wire.line(r), as: UTF8.self))
            }
        }
    }
}
