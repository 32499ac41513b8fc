import DeltaLease
import DiskPaxos

extension HostCore {
    /// The core's invariants, checked after every step in every build (TigerStyle: a broken
    /// invariant is a bug to stop at, not a state to carry on from).
    func checkInvariants() {
        for (k, hs) in holdings {
            precondition(!hs.isEmpty, "empty holding list for \(k)")
            let exclusive = hs.filter { !$0.grant.shared }
            precondition(exclusive.count <= 1, "two exclusive holdings of \(k)")
            precondition(exclusive.isEmpty || hs.count == 1, "an exclusive holding of \(k) beside a shared one")
            precondition(Set(hs.map(\.grant.lver)).count == 1, "holdings of \(k) at different lvers")
            let state = lockspaces[k.lockspace]?.state
            precondition(
                state == .joined || state == .leaving,
                "holding of \(k) in a lockspace that is \(state.map { "\($0)" } ?? "gone")")
            let ids = hs.compactMap { $0.client?.id }
            precondition(Set(ids).count == ids.count, "one process holds \(k) twice")
        }
        for (k, op) in busy {
            precondition(ops[op] != nil, "resource \(k) busy with an operation nobody runs")
            precondition(lockspaces[k.lockspace]?.ballotOps.contains(op) ?? true, "ballot op of \(k) not counted")
        }
        for (name, ls) in lockspaces {
            precondition(
                ls.state != .left || !ls.ballotOps.isEmpty || ls.laneOp != nil, "left lockspace \(name) still listed")
            if let op = ls.laneOp { precondition(ops[op] != nil, "lane of \(name) busy with an unknown operation") }
            if ls.state == .joined {
                precondition(
                    ls.record != nil && ls.membership != nil && ls.lastSuccess != nil, "joined \(name) without a record"
                )
            }
        }
    }
}
