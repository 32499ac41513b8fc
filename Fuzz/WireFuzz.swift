// libFuzzer target: the daemon's request decoder and the lockspace-string parser, on arbitrary
// bytes. A trap is a finding; nil or a thrown decoding error is the expected answer.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    if let q = try? Wire.decoder().decode(Request.self, from: bytes) {
        var r = Response(ok: true)
        r.id = q.id
        _ = Wire.line(r)
    }
    let text = String(decoding: bytes, as: UTF8.self)
    _ = LockspaceSpec(sanlock: text)
    return 0
}
