import ArgumentParser
import Foundation

/// `disklease bench plot`: a line chart as SVG from "series<TAB>x<TAB>y" lines, so the
/// benchmark runner needs nothing beyond the toolchain to draw its figures. Log axes use
/// decade ticks; every point is marked, so one-point series still show.
struct BenchPlot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw series<TAB>x<TAB>y lines from standard input as an SVG line chart.")
    @Option(help: "Chart title.") var title: String
    @Option(help: "X axis label.") var xLabel: String
    @Option(help: "Y axis label.") var yLabel: String
    @Flag(help: "Logarithmic x axis.") var logX = false
    @Flag(help: "Logarithmic y axis.") var logY = false
    @Option(name: .customShort("o"), help: "SVG file to write.") var output: String

    struct Point { var x: Double, y: Double }

    func run() throws {
        try reporting {
            var series: [(name: String, points: [Point])] = []
            var lineNo = 0
            while let line = readLine() {
                lineNo += 1
                if line.isEmpty { continue }
                let f = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard f.count == 3, let x = Double(f[1]), let y = Double(f[2]), !(logX && x <= 0), !(logY && y <= 0)
                else {
                    throw CLIFailure(
                        "bench plot: line \(lineNo): expected series<TAB>x<TAB>y with positive values on log axes: "
                            + "\(line)",
                        .usage)
                }
                let name = String(f[0])
                if let i = series.firstIndex(where: { $0.name == name }) {
                    series[i].points.append(Point(x: x, y: y))
                } else {
                    series.append((name, [Point(x: x, y: y)]))
                }
            }
            guard !series.isEmpty else { throw CLIFailure("bench plot: no data on standard input", .usage) }
            let svg = render(series)
            do {
                try svg.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                throw CLIFailure("bench plot: \(output): \(error.localizedDescription)", .io)
            }
        }
    }

    func render(_ series: [(name: String, points: [Point])]) -> String {
        let w = 720.0, h = 420.0, left = 90.0, right = 200.0, top = 40.0, bottom = 60.0
        let all = series.flatMap(\.points)
        func axis(_ values: [Double], log: Bool) -> (lo: Double, hi: Double, ticks: [Double]) {
            var lo = values.min()!, hi = values.max()!
            if log {
                lo = pow(10, floor(log10(lo)))
                hi = pow(10, ceil(log10(hi)))
                if lo == hi { hi = lo * 10 }
                return (lo, hi, stride(from: log10(lo), through: log10(hi), by: 1).map { pow(10, $0) })
            }
            lo = min(0, lo)
            if hi == lo { hi = lo + 1 }
            let step = niceStep((hi - lo) / 5)
            hi = ceil(hi / step) * step
            return (lo, hi, stride(from: lo, through: hi + step / 2, by: step).map { $0 })
        }
        let ax = axis(all.map(\.x), log: logX), ay = axis(all.map(\.y), log: logY)
        func px(_ x: Double) -> Double {
            let f = logX ? (log10(x) - log10(ax.lo)) / (log10(ax.hi) - log10(ax.lo)) : (x - ax.lo) / (ax.hi - ax.lo)
            return left + f * (w - left - right)
        }
        func py(_ y: Double) -> Double {
            let f = logY ? (log10(y) - log10(ay.lo)) / (log10(ay.hi) - log10(ay.lo)) : (y - ay.lo) / (ay.hi - ay.lo)
            return h - bottom - f * (h - top - bottom)
        }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" \
            font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        for t in ax.ticks {
            s += "<line x1=\"\(px(t))\" y1=\"\(top)\" x2=\"\(px(t))\" y2=\"\(h - bottom)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(px(t))\" y=\"\(h - bottom + 16)\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        for t in ay.ticks {
            s += "<line x1=\"\(left)\" y1=\"\(py(t))\" x2=\"\(w - right)\" y2=\"\(py(t))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 6)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        s +=
            "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w - left - right)\" height=\"\(h - top - bottom)\" "
                + "fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 18)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s +=
            "<text transform=\"translate(18 \((top + h - bottom) / 2)) rotate(-90)\" "
                + "text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (i, sr) in series.enumerated() {
            let c = colors[i % colors.count]
            let pts = sr.points.sorted { $0.x < $1.x }
            let points = pts.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for p in pts { s += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"3\" fill=\"\(c)\"/>\n" }
            let ly = top + 14 + Double(i) * 18
            s +=
                "<line x1=\"\(w - right + 12)\" y1=\"\(ly - 4)\" x2=\"\(w - right + 32)\" y2=\"\(ly - 4)\" "
                    + "stroke=\"\(c)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(w - right + 38)\" y=\"\(ly)\">\(escape(sr.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    func niceStep(_ raw: Double) -> Double {
        let m = pow(10, floor(log10(raw)))
        for k in [1.0, 2, 5, 10] where raw <= k * m { return k * m }
        return 10 * m
    }

    func label(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e9 { return trim(v / 1e9) + "G" }
        if a >= 1e6 { return trim(v / 1e6) + "M" }
        if a >= 1e3 { return trim(v / 1e3) + "k" }
        return trim(v)
    }

    func trim(_ v: Double) -> String {
        v == v.rounded() ? String(Int(v)) : String(format: "%.2g", v)
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
            of: ">", with: "&gt;")
    }
}
