import CDirectIO

/// Page-aligned, zeroed memory that the kernel may DMA into. Owned by exactly one batch engine
/// (or by its parked list after a timeout), freed only when no request can still touch it.
final class AlignedBuffer {
    static let pageSize = 4096

    let base: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) throws(BlockIOError) {
        let rounded = max(Self.pageSize, (capacity + Self.pageSize - 1) / Self.pageSize * Self.pageSize)
        guard let p = cdio_alloc_aligned(Self.pageSize, rounded) else {
            throw .outOfMemory(bytes: rounded)
        }
        precondition(Int(bitPattern: p) % Self.pageSize == 0, "aligned allocation is not page aligned")
        base = p
        self.capacity = rounded
    }

    deinit { cdio_free(base) }
}
