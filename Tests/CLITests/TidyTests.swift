import Foundation
import Testing
import TestSupport

/// The code stays readable: every Swift file of the package (sources, tests, tools,
/// benchmarks) has lines of at most 120 columns and functions of at most 70 lines.
/// `swift-format format -i -r Sources Tests Tools Benchmarks` (configured in `.swift-format`)
/// wraps most long lines; long functions are split by hand.
@Suite struct TidyTests {
    static let maxColumns = 120
    static let maxFunctionLines = 70

    @Test func linesAreAtMost120Columns() throws {
        var offenders: [String] = []
        for file in try Self.swiftFiles() {
            for (i, line) in try Self.lines(file).enumerated() where line.count > Self.maxColumns {
                offenders.append("\(Self.relative(file)):\(i + 1): \(line.count) columns")
            }
        }
        #expect(offenders.isEmpty, "\(offenders.count) long lines:\n\(offenders.joined(separator: "\n"))")
    }

    @Test func functionsAreAtMost70Lines() throws {
        var offenders: [String] = []
        for file in try Self.swiftFiles() {
            for f in FunctionScanner.functions(in: try Self.lines(file)) where f.lines > Self.maxFunctionLines {
                offenders.append("\(Self.relative(file)):\(f.start): \(f.lines) lines: \(f.signature)")
            }
        }
        #expect(offenders.isEmpty, "\(offenders.count) long functions:\n\(offenders.joined(separator: "\n"))")
    }

    /// The scanner itself must be able to fail.
    @Test func theScannerFindsALongFunction() {
        let body = (0..<80).map { "    let x\($0) = \($0)" }
        let source = ["struct S {", "    func f() {"] + body + ["    }", "}"]
        let found = FunctionScanner.functions(in: source)
        #expect(found.count == 1 && found[0].lines == 82)
    }

    static func swiftFiles() throws -> [URL] {
        let root = Scratch.packageRoot
        var out: [URL] = []
        for top in ["Sources", "Tests", "Tools", "Benchmarks"] {
            let dir = root.appendingPathComponent(top)
            guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in e {
                if url.path.contains("/.build/") { continue }
                if url.pathExtension == "swift" { out.append(url) }
            }
        }
        #expect(out.count > 50, "found only \(out.count) Swift files under \(root.path)")
        return out.sorted { $0.path < $1.path }
    }

    static func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
    }

    static func relative(_ url: URL) -> String {
        String(url.path.dropFirst(Scratch.packageRoot.path.count + 1))
    }
}

/// Finds function, initializer and accessor bodies by their braces (strings and comments
/// stripped), enough for a length check.
enum FunctionScanner {
    struct Function {
        var start: Int
        var lines: Int
        var signature: String
    }

    static let declaration = try! NSRegularExpression(
        pattern: #"^\s*(@\w+(\([^)]*\))?\s+)*((public|private|fileprivate|internal|package|static|mutating|"#
            + #"nonisolated|override|final|class|convenience|required)\s+)*(func\s|init[?!]?\s*[<(]|deinit\b)"#)

    static func functions(in lines: [String]) -> [Function] {
        var out: [Function] = []
        for (i, line) in lines.enumerated() where isDeclaration(line) {
            if let end = closingLine(lines, from: i) {
                out.append(
                    Function(
                        start: i + 1, lines: end - i + 1,
                        signature: String(line.trimmingCharacters(in: .whitespaces).prefix(60))))
            }
        }
        return out
    }

    static func isDeclaration(_ line: String) -> Bool {
        let range = NSRange(line.startIndex..., in: line)
        return declaration.firstMatch(in: line, range: range) != nil
    }

    /// The line of the brace that closes the body opened at or after `start` (nil for a
    /// protocol requirement, whose declaration has no body).
    static func closingLine(_ lines: [String], from start: Int) -> Int? {
        var depth = 0
        var opened = false
        for j in start..<lines.count {
            for ch in code(lines[j]) {
                if ch == "{" { depth += 1; opened = true }
                if ch == "}" { depth -= 1 }
            }
            if opened && depth <= 0 { return j }
            if !opened && j > start + 8 { return nil }
        }
        return nil
    }

    /// A line without its string literals and its trailing comment.
    static func code(_ line: String) -> String {
        var out = ""
        var inString = false
        var escaped = false
        var previous: Character = " "
        for ch in line {
            if inString {
                if escaped {
                    escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else if ch == "\"" {
                    inString = false
                }
            } else if ch == "\"" {
                inString = true
            } else if ch == "/" && previous == "/" {
                out.removeLast()
                break
            } else {
                out.append(ch)
            }
            previous = ch
        }
        return out
    }
}
