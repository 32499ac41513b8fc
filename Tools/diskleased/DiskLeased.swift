import ArgumentParser
import DiskLeaseClient
import Foundation
import LeaseDaemon
import Logging
import ServiceLifecycle

/// `diskleased`: the DiskLease host daemon.
@main
struct DiskLeased: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diskleased",
        abstract: "The DiskLease host daemon: holds host ids and resource leases for local processes.",
        discussion: """
            Every option is also a `key = value` line of the config file (the option's name
            without dashes); options given here win. SIGTERM or SIGINT stop it cleanly:
            leases are released and lockspaces left.
            """,
        version: DiskLeaseVersion.string)

    @Option(help: "Config file (missing is fine for the default path).") var config: String = DaemonConfig.defaultFile
    @Option(help: "Run directory: socket, leases.json.") var runDir: String?
    @Option(help: "Lockspace to join at start, name:host_id:path:offset (repeatable).") var lockspace: [String] = []
    @Option(help: "io_timeout in seconds (default 10).") var ioTimeout: Int?
    @Option(help: "Watchdog fire timeout in seconds (default 60).") var watchdogFireTimeout: Int?
    @Option(help: "Ballot reads: live (default; full when a sanlock host is seen) or full.") var readMode: String?
    @Option(help: "Host name in delta leases, stable across restarts (default: the node name and machine id).")
    var hostName: String?
    @Option(help: "A uid allowed on the socket besides root (repeatable).") var allowUid: [UInt32] = []
    @Option(help: "A gid allowed on the socket besides root (repeatable).") var allowGid: [UInt32] = []
    @Option(help: "A device or directory non-root clients may use as a lockspace path (repeatable).")
    var allowPath: [String] = []
    @Option(help: "The socket's group, a name or gid (socket mode 0660; default the daemon's group).")
    var socketGroup: String?
    @Option(help: "Connections served at once; more are refused (default 256).") var maxConnections: Int?
    @Option(help: "Connections one non-root uid may hold at once (default 64).") var maxConnectionsPerUid: Int?
    @Option(help: "Program run per holder when a lockspace fails: HOOK <pid> <lockspace> <resource>.") var killHook:
        String?
    @Option(help: "Seconds the kill hook gets before SIGTERM (default 5).") var killGrace: Int?
    @Option(help: "Seconds after SIGTERM before SIGKILL (default 5).") var termGrace: Int?
    @Option(help: "Watchdog device, or none (default /dev/watchdog).") var watchdogDevice: String?
    @Option(help: "Leases of the previous incarnation: release or adopt (default release).") var orphans: String?
    @Option(help: "Serve Prometheus metrics on 127.0.0.1:PORT.") var metricsPort: Int?
    @Option(help: "Storage-loss drill: while this file exists every I/O fails.") var faultFile: String?
    @Option(help: "Lowest level logged: trace, debug, info (default), notice, warning, error, critical.")
    var logLevel: String?
    @Flag(name: .customLong("guard"), help: .hidden) var guardProcess = false

    func resolved() throws -> DaemonConfig {
        var c = DaemonConfig()
        if FileManager.default.fileExists(atPath: config) {
            try c.apply(file: config)
        } else if config != DaemonConfig.defaultFile {
            throw ValidationError("config file \(config) does not exist")
        }
        if let v = runDir { c.runDir = v }
        c.lockspaces += lockspace
        if let v = ioTimeout { try c.set(option: "io-timeout", String(v)) }
        if let v = watchdogFireTimeout { try c.set(option: "watchdog-fire-timeout", String(v)) }
        if let v = readMode {
            guard v == "live" || v == "full" else { throw ValidationError("--read-mode is live or full") }
            c.readMode = v
        }
        if let v = hostName { c.hostName = v }
        c.allowUIDs += allowUid
        c.allowGIDs += allowGid
        for v in allowPath { try c.set(option: "allow-path", v) }
        if let v = socketGroup { try c.set(option: "socket-group", v) }
        if let v = maxConnections { try c.set(option: "max-connections", String(v)) }
        if let v = maxConnectionsPerUid { try c.set(option: "max-connections-per-uid", String(v)) }
        if let v = killHook { c.killHook = v }
        if let v = killGrace { try c.set(option: "kill-grace", String(v)) }
        if let v = termGrace { try c.set(option: "term-grace", String(v)) }
        if let v = watchdogDevice { c.watchdogDevice = v }
        if let v = orphans {
            guard let p = OrphanPolicy(rawValue: v) else { throw ValidationError("--orphans is release or adopt") }
            c.orphans = p
        }
        if let v = metricsPort { try c.set(option: "metrics-port", String(v)) }
        if let v = faultFile { c.faultFile = v }
        if let v = logLevel { try c.set(option: "log-level", v) }
        guard (1...255).contains(c.ioTimeout), c.watchdogFireSeconds >= 1 else {
            throw ValidationError("io_timeout must be 1...255 and the watchdog timeout at least 1")
        }
        if c.killGraceSeconds + c.termGraceSeconds >= c.watchdogFireSeconds {
            throw ValidationError(
                "kill_grace + term_grace (\(c.killGraceSeconds + c.termGraceSeconds)s) must be below the watchdog "
                    + "timeout (\(c.watchdogFireSeconds)s): holders must be stopped before other hosts may take over"
            )
        }
        return c
    }

    func run() async throws {
        if guardProcess {
            // The independent guard (see GuardLink): its own process, its own loop.
            GuardProcess.run(termGrace: max(1, termGrace ?? 5))
        }
        let c: DaemonConfig
        do {
            c = try resolved()
        } catch let e as ConfigError {
            FileHandle.standardError.write(Data("diskleased: \(e)\n".utf8))
            throw ExitCode(78)
        }
        let level = Logger.Level(configName: c.logLevel) ?? .info
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
        let log = Logger(label: "diskleased")
        try FileManager.default.createDirectory(
            atPath: c.runDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        do {
            try RunDirLock.acquire(c.runDir)
        } catch {
            log.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(error.code == .exists ? 75 : 77)
        }
        var config = c
        if config.guardProgram == nil {
            config.guardProgram =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
        }
        let service = DaemonService(config: config, log: log)
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: log)
        try await group.run()
    }
}

/// The daemon as a service: started, then stopped cleanly on SIGTERM/SIGINT.
struct DaemonService: Service {
    let config: DaemonConfig
    let log: Logger

    func run() async throws {
        // Before any metric exists: handles made earlier would stay on the no-op backend.
        let render = config.metricsPort.map { _ in DaemonMetricsExport.bootstrap() }
        let daemon: Daemon
        do {
            daemon = try Daemon(config: config, logger: log)
        } catch {
            log.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(74)
        }
        let server = SocketServer(daemon: daemon, log: log)
        if let failure = start(daemon, server, render) {
            log.critical("cannot start", metadata: ["error": "\(failure)"])
            server.stop()
            daemon.watchdog.disarm()
            throw ExitCode(failure.code == .badRequest ? 64 : 74)
        }
        log.info(
            "diskleased started",
            metadata: ["run_dir": "\(config.runDir)", "pid": "\(getpid())", "host_name": "\(daemon.hostName)"])
        try? await gracefulShutdown()
        log.info("stopping")
        server.stop()
        daemon.shutdown()
        daemon.watchdog.disarm()
    }

    func start(_ daemon: Daemon, _ server: SocketServer, _ render: (@Sendable () -> String)?) -> WireError? {
        do {
            try server.start()
            if let port = config.metricsPort, let render {
                try MetricsServer(port: port, log: log, render: render).start()
            }
            try daemon.start()
            return nil
        } catch {
            return error
        }
    }
}
