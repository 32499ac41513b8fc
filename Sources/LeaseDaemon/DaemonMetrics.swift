import CoreMetrics
import DeltaLease
import DiskLeaseClient
import DiskPaxos
import Foundation
import HostCore
import LeaseRunner
import Metrics

/// The daemon's metrics through swift-metrics (exported by swift-prometheus when enabled):
/// ballots and aborts, bytes and I/Os per ballot, renewal latency, leases, hosts by state.
struct DaemonMetrics {
    let ballots = Counter(label: "disklease_acquires_total")
    let ballotsRun = Counter(label: "disklease_ballots_total")
    let failures = Counter(label: "disklease_acquire_failures_total")
    let bytesPerAcquire = Recorder(label: "disklease_acquire_bytes_read", aggregate: true)
    let iosPerAcquire = Recorder(label: "disklease_acquire_round_trips", aggregate: true)
    let renewalLatency = Timer(label: "disklease_renewal_seconds")
    let renewalFailures = Counter(label: "disklease_renewal_failures_total")
    let fencings = Counter(label: "disklease_lockspace_failures_total")

    func ballot(trace: IOTrace, result: Result<Grant, PaxosError>) {
        ballots.increment()
        bytesPerAcquire.record(trace.bytesRead)
        iosPerAcquire.record(trace.roundTrips)
        switch result {
        case .success(let g): ballotsRun.increment(by: g.ballots)
        case .failure: failures.increment()
        }
    }

    func renewal(seconds: Double, ok: Bool) {
        renewalLatency.recordNanoseconds(Int64(seconds * 1e9))
        if !ok { renewalFailures.increment() }
    }

    func fenced(lockspace: String) { fencings.increment() }

    func stateSaveFailed() { Counter(label: "disklease_state_save_failures_total").increment() }

    /// Figures from one finished operation of the host core.
    func record(_ out: HostOutput, trace: IOTrace, seconds: Double, lockspace: String) {
        switch out {
        case .renew(let r):
            renewal(seconds: seconds, ok: (try? r.get()) != nil)
        case .acquire(let r, _):
            ballot(trace: trace, result: r)
        default:
            break
        }
    }

    func requestFailed(_ op: RequestOp, _ code: ErrorCode) {
        Counter(label: "disklease_request_errors_total", dimensions: [("op", op.rawValue), ("code", code.rawValue)])
            .increment()
    }

    func hosts(_ hosts: [HostStatus], lockspace: String) {
        for s in HostState.allCases {
            Gauge(label: "disklease_hosts", dimensions: [("lockspace", lockspace), ("state", s.rawValue)])
                .record(hosts.filter { $0.state == s }.count)
        }
    }

    func leasesHeld(_ n: Int) {
        Gauge(label: "disklease_leases_held").record(n)
    }
}

import Prometheus

/// Routes swift-metrics into a Prometheus registry (once per process).
public enum DaemonMetricsExport {
    public static func bootstrap() -> @Sendable () -> String {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return { registry.emitToString() }
    }
}
