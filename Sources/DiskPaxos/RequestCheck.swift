import DeltaLease
import DirectIO
import LeaseFormat

/// Reading the request records of leases we hold, after another host set our bit in its
/// bitmap (SANLOCK-FORMAT.md §6.5): which of them has someone asked us to release?
/// One batch, one sector per resource; a record that fails its checks counts as no request.
public struct RequestCheck: LeaseOperation {
    public typealias Output = Result<[PaxosResource: RequestRecord], PaxosError>

    let resources: [PaxosResource]

    public init(resources: [PaxosResource]) { self.resources = resources }

    public mutating func start(now: Nanos) -> Step<Output> {
        if resources.isEmpty { return .finished(.success([:])) }
        return .perform(
            .read(resources.map { IORange(offset: $0.layout.requestOffset, length: $0.layout.geometry.sectorSize) }))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        var out: [PaxosResource: RequestRecord] = [:]
        for (r, bytes) in zip(resources, result.reads) {
            if let rec = try? RequestRecord.verify(bytes, deviceOffset: r.layout.requestOffset) { out[r] = rec }
        }
        return .finished(.success(out))
    }
}
