/// Deliberately broken rules, for the simulator's mutation tests only: each switch removes one
/// rule of docs/AGREEMENT.md (or one of the host core's fencing rules) so a test can show the
/// checkers catch the violation. Production code, the daemon and the CLI always use `[]`.
public struct SafetyMutations: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Rule 3 removed: ballots never compare the epoch.
    public static let noEpochCheck = SafetyMutations(rawValue: 1 << 0)
    /// Rule 3 weakened: only the initial and phase-1 reads compare the epoch.
    public static let epochCheckPhase1Only = SafetyMutations(rawValue: 1 << 1)
    /// The epoch is a counter (read, add one, write): two joiners can write the same value.
    public static let epochCounter = SafetyMutations(rawValue: 1 << 2)
    /// Rule 1 broken: a rebuild reads the epoch and the slots in one batch.
    public static let buildInOneBatch = SafetyMutations(rawValue: 1 << 3)
    /// Rule 2 broken: a member the live view calls DEAD is dropped from read sets.
    public static let dropDeadBlocks = SafetyMutations(rawValue: 1 << 4)
    /// Rule 5 broken: a leave does not wait for the host's ballots and I/O.
    public static let leaveDuringBallot = SafetyMutations(rawValue: 1 << 5)
    /// Rule 8 broken: a failed convert retracts with an empty mode block.
    public static let convertRetractWithoutShared = SafetyMutations(rawValue: 1 << 6)
    /// Rule 4 broken: the epoch write goes in the same submit as the delta write.
    public static let epochWithDelta = SafetyMutations(rawValue: 1 << 7)
    /// Rule 6 removed: a left host's block is dropped at once.
    public static let dropLeftAtOnce = SafetyMutations(rawValue: 1 << 8)
    /// Host core: the watchdog is fed while a fenced lockspace's holder may still run.
    public static let feedWatchdogWhileVictimLives = SafetyMutations(rawValue: 1 << 9)
    /// Host core: a restart joins and feeds the watchdog without killing leftover holders.
    public static let restartWithoutKillingLeftovers = SafetyMutations(rawValue: 1 << 10)
    /// Host core: renewal errors that must fence at once (our slot taken or changed) are
    /// treated as ordinary failed renewals.
    public static let ignoreFenceAtOnce = SafetyMutations(rawValue: 1 << 11)
    /// Paxos: a ballot forgets the version of its own write still in flight (rule 7's floor),
    /// so its block can go back to a lower lver and hide a committed version.
    public static let noLverFloor = SafetyMutations(rawValue: 1 << 12)

    /// Every mutant by its command-line name.
    public static let named: [(String, SafetyMutations)] = [
        ("noEpochCheck", .noEpochCheck), ("epochCheckPhase1Only", .epochCheckPhase1Only),
        ("epochCounter", .epochCounter), ("buildInOneBatch", .buildInOneBatch),
        ("dropDeadBlocks", .dropDeadBlocks), ("leaveDuringBallot", .leaveDuringBallot),
        ("convertRetractWithoutShared", .convertRetractWithoutShared), ("epochWithDelta", .epochWithDelta),
        ("dropLeftAtOnce", .dropLeftAtOnce), ("feedWatchdogWhileVictimLives", .feedWatchdogWhileVictimLives),
        ("restartWithoutKillingLeftovers", .restartWithoutKillingLeftovers), ("ignoreFenceAtOnce", .ignoreFenceAtOnce),
        ("noLverFloor", .noLverFloor),
    ]
}
