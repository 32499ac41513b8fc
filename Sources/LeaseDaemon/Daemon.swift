import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import Foundation
import HostCore
import LeaseFormat
import LeaseRunner
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The host daemon: a shell around `HostCore`. It steps the core under one lock (`Monitor`),
/// then carries out the effects outside it: operations on the lockspace's devices (each on
/// its own thread), the state file, the fencer, the independent guard process, the watchdog
/// and logs. Every decision (when to renew, fence, grant, retry, leave) is the core's, and
/// the simulator drives that same core.
///
/// Guarantees on top of the core's: a reply is sent only after the state file holds every
/// change made before it (a daemon killed right after answering still finds the lease on
/// restart); every wait and deadline runs on CLOCK_MONOTONIC, the fencing deadline on
/// CLOCK_BOOTTIME (inside the core), so neither a wall-clock step nor a pause stretches them.
public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfig
    let log: Logger
    let metrics = DaemonMetrics()
    let stateFile: StateFile
    public let hostName: String
    let fencer: Fencer
    public let watchdog: Watchdog
    let guardLink: GuardLink?

    struct State {
        var core: HostCore
        var devices: [String: LockspaceDevices] = [:]
        var replies: [RequestID: HostReply] = [:]
        /// The state-file version each answered request needs saved before it goes out.
        var replyVersion: [RequestID: UInt64] = [:]
        var nextRequest: RequestID = 1
        var stateVersion: UInt64 = 0
        var savedVersion: UInt64 = 0
        var pendingLeases: [PersistedLease]? = nil
        /// Versions whose save failed (their requests are answered with the error).
        var failedSave: (through: UInt64, message: String)? = nil
        var adding: Set<String> = []
        var stopped = false
    }
    let state: Monitor<State>
    /// Open connections by the process that opened them. A connection outlives its process
    /// when a child inherited it: the fencer may then confirm a holder stopped only once its
    /// connection has closed too.
    let openConnections = Monitor([ProcessRef: Int]())

    public init(config: DaemonConfig, logger: Logger) throws(WireError) {
        self.config = config
        self.log = logger
        stateFile = StateFile(runDir: config.runDir)
        hostName = Self.stableHostName(config.hostName)
        fencer = Fencer(
            killHook: config.killHook, killGrace: config.killGraceSeconds, termGrace: config.termGraceSeconds,
            log: logger)
        watchdog = try Watchdog(device: config.watchdogDevice, timeoutSeconds: config.watchdogFireSeconds, log: logger)
        guardLink = config.guardProgram.map { GuardLink(program: $0, log: logger) }
        var hc = HostConfig()
        hc.orphans = config.orphans
        var seed = SystemRandomNumberGenerator()
        state = Monitor(State(core: HostCore(config: hc, seed: seed.next())))
    }

    /// `dl:` and a name that survives restarts (so a restart takes sanlock's same-name fast
    /// path): the configured one, else the node name and this machine's id.
    static func stableHostName(_ configured: String?) -> String {
        if let c = configured {
            return String(
                (c.hasPrefix(LiveView.nameMarker) ? c : LiveView.nameMarker + c).prefix(LeaseName.hostNameMax))
        }
        let id =
            (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines) ?? ""
        let suffix = id.isEmpty ? "" : "-" + id.prefix(12)
        return String("\(LiveView.nameMarker)\(nodeName())\(suffix)".prefix(LeaseName.hostNameMax))
    }

    // MARK: - Start and stop

    /// Reads the previous incarnation's leases, starts the clock and the state writer, and
    /// joins the configured lockspaces (in the background).
    public func start() throws(WireError) {
        let loaded = stateFile.load()
        for d in loaded.damaged { log.error("state file entry unreadable: dropped", metadata: ["entry": "\(d)"]) }
        submit(.start(previous: loaded.leases))
        Thread.detachNewThread { [self] in stateWriterLoop() }
        Thread.detachNewThread { [self] in tickLoop() }
        for s in config.lockspaces {
            let spec: LockspaceSpec
            do {
                spec = try LockspaceSpec(parsing: s)
            } catch {
                throw WireError(.badRequest, "lockspace \(s): \(error)")
            }
            Thread.detachNewThread { [self] in
                let r = addLockspace(spec, wait: false)
                if case .failed(let f) = r {
                    log.error(
                        "cannot join a configured lockspace", metadata: ["lockspace": "\(spec.name)", "error": "\(f)"])
                }
            }
        }
    }

    /// Releases every lease on disk and leaves every lockspace (a clean stop: no watchdog
    /// reset is needed, unlike a crash).
    public func shutdown() {
        let r = call(deadline: HostClocks.mono() + Clock.seconds(4 * config.ioTimeout + 10)) { .shutdown($0) }
        if r == nil { log.error("stop: leaving timed out; some lockspaces may be left to expire") }
        state.withLock { $0.stopped = true }
        state.broadcast()
        guardLink?.close()
        log.info("stopped")
    }

    // MARK: - Stepping the core

    /// Feeds one event to the core and carries out what it says.
    func submit(_ event: HostEvent) {
        var answers: [(RequestID, HostReply, UInt64)] = []
        let effects: [HostEffect] = state.withLock { s in
            let out = s.core.step(event, now: HostClocks.now())
            var rest: [HostEffect] = []
            for e in out {
                switch e {
                case .persist(let leases):
                    s.stateVersion += 1
                    s.pendingLeases = leases
                case let .reply(id, r):
                    answers.append((id, r, s.stateVersion))
                default:
                    rest.append(e)
                }
            }
            return rest
        }
        state.broadcast()
        for e in effects { carryOut(e) }
        // Answers go out after this step's effects (its logs, its operations) are under way,
        // and each waits for the state file to hold what it depends on.
        guard !answers.isEmpty else { return }
        state.withLock { s in
            for (id, r, version) in answers {
                s.replies[id] = r
                s.replyVersion[id] = version
            }
        }
        state.broadcast()
    }

    func carryOut(_ e: HostEffect) {
        switch e {
        case let .run(id, name, lane, op):
            guard let devices = state.withLock({ $0.devices[name] }) else {
                preconditionFailure("operation for lockspace \(name), which has no devices")
            }
            Thread.detachNewThread { [self] in
                let started = HostClocks.mono()
                let (out, trace) = perform(op, on: devices, lane: lane)
                metrics.record(out, trace: trace, seconds: Double(HostClocks.mono() - started) / 1e9, lockspace: name)
                submit(.finished(id, out))
                if case .renew = out, let hosts = query({ core, now in core.hostStatus(name, now: now) }) {
                    metrics.hosts(hosts, lockspace: name)
                }
            }
        case let .fence(name, victims, reason):
            metrics.fenced(lockspace: name)
            log.critical(
                "stopping holders",
                metadata: ["lockspace": "\(name)", "reason": "\(reason)", "holders": "\(victims.map(\.description))"])
            for v in victims {
                Thread.detachNewThread { [self] in
                    let gone = fencer.stop(v) { openConnections.withLock { $0[v.process, default: 0] > 0 } }
                    submit(gone ? .victimGone(v) : .victimUnconfirmed(v))
                }
            }
        case .guardState(let g):
            guardLink?.send(g)
        case .watchdog(let feed):
            if feed { watchdog.feed() }
        case let .log(level, message, meta):
            log.log(level: level.swiftLog, "\(message)", metadata: meta.mapValues { .string($0) })
        case .persist, .reply:
            preconditionFailure("handled under the lock")
        }
    }

    /// Sends an event that will be answered and waits for the answer (and for the state file
    /// to hold everything it depends on). nil when `deadline` (monotonic) passed first.
    func call(deadline: Nanos? = nil, _ make: (RequestID) -> HostEvent) -> HostReply? {
        let id = state.withLock { s -> RequestID in
            defer { s.nextRequest += 1 }
            return s.nextRequest
        }
        submit(make(id))
        let answered = state.wait(until: deadline) { s in
            guard let need = s.replyVersion[id] else { return false }
            return s.savedVersion >= need || (s.failedSave.map { $0.through >= need } ?? false)
        }
        return state.withLock { s -> HostReply? in
            guard answered, let r = s.replies.removeValue(forKey: id), let need = s.replyVersion.removeValue(forKey: id)
            else {
                s.replies[id] = nil
                s.replyVersion[id] = nil
                return nil
            }
            if s.savedVersion < need, let f = s.failedSave {
                return .failed(HostFailure(.io, "the lease state could not be saved: \(f.message)"))
            }
            return r
        }
    }

    /// Read-only questions to the core, under the lock.
    func query<T>(_ body: (HostCore, HostTime) -> T) -> T {
        state.withLock { s in body(s.core, HostClocks.now()) }
    }

    // MARK: - Threads

    private func tickLoop() {
        while true {
            if state.withLock({ $0.stopped }) { return }
            submit(.tick)
            let wake = state.withLock { min($0.core.nextWake(), HostClocks.mono() + 250_000_000) }
            _ = state.wait(until: wake) { $0.stopped }
        }
    }

    /// Saves the state file off the lock, once for every change that arrived meanwhile.
    private func stateWriterLoop() {
        while true {
            var version: UInt64 = 0
            var leases: [PersistedLease] = []
            let go = state.wait { s in s.stopped || s.pendingLeases != nil }
            _ = go
            let stop = state.withLock { s -> Bool in
                guard let l = s.pendingLeases else { return s.stopped }
                leases = l
                version = s.stateVersion
                s.pendingLeases = nil
                return false
            }
            if stop { return }
            do {
                try stateFile.save(leases)
                state.withLock { $0.savedVersion = max($0.savedVersion, version) }
            } catch {
                metrics.stateSaveFailed()
                log.error("cannot save the lease state", metadata: ["error": "\(error)"])
                state.withLock { $0.failedSave = (version, error.message) }
            }
            state.broadcast()
        }
    }
}

extension LogLevel {
    var swiftLog: Logger.Level {
        switch self {
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        case .critical: return .critical
        }
    }
}
