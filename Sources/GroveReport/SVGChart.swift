import Foundation

/// How a chart's values read on its axis and in tables.
public enum ValueFormat: Sendable {
    /// A fraction shown as a percentage (0.25 → "25%").
    case percent
    /// A plain number, with as many digits as its size needs.
    case number
    /// Seconds.
    case seconds

    /// `value` as text; `step` is the spacing of neighbouring values (ticks), which sets the digits.
    public func text(_ value: Double, step: Double? = nil) -> String {
        guard value.isFinite else { return "–" }
        switch self {
        case .percent: return ValueFormat.number.text(100 * value, step: step.map { 100 * $0 }) + "%"
        case .seconds: return ValueFormat.number.text(value, step: step) + "s"
        case .number:
            if value == 0 { return "0" }
            let magnitude = abs(value)
            if magnitude >= 1e5 || magnitude < 1e-3 { return String(format: "%.2g", value) }
            // Enough decimals to tell neighbouring ticks apart, or 3 significant digits.
            let decimals = step.map { max(0, Int(-floor(log10($0)))) } ?? max(0, 2 - Int(floor(log10(magnitude))))
            return String(format: "%.\(min(decimals, 6))f", value)
        }
    }
}

/// A line chart as inline SVG: named series on a shared x axis (the run's global step), a
/// legend, a few ticks per axis, and vertical lines where stages begin. A NaN value breaks its
/// line. The plot spans exactly the data's range, so the extreme points touch the plot's edges.
public struct SVGChart {
    /// One named line.
    public struct Series {
        public var name: String
        public var points: [ChartPoint]
        public init(name: String, points: [ChartPoint]) { self.name = name; self.points = points }
    }

    /// A vertical line marking where a stage begins, labelled with the stage.
    public struct Marker {
        public var x: Double
        public var label: String
        public init(x: Double, label: String) { self.x = x; self.label = label }
    }

    /// The chart's size in pixels and the plot rectangle inside it (the rest holds legend and ticks).
    public enum Layout {
        public static let width = 560.0, height = 220.0
        /// The plot rectangle: the data's smallest x maps to `plotLeft`, its largest y to `plotTop`.
        public static let plotLeft = 56.0, plotRight = width - 14, plotTop = 30.0, plotBottom = height - 26
    }

    /// Line colours, in series order (colour-blind safe, after Okabe & Ito).
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    /// The lines, coloured from `palette` in order.
    public var series: [Series]
    /// Where stages begin, in x order.
    public var markers: [Marker]
    /// How the y axis's ticks read.
    public var format: ValueFormat

    /// A chart of `series`, with a dashed line at each marker inside the plotted range.
    public init(series: [Series], markers: [Marker] = [], format: ValueFormat = .number) {
        self.series = series; self.markers = markers; self.format = format
    }

    /// The finite points of every series.
    var finitePoints: [ChartPoint] { series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite } }

    /// Whether there is anything to draw.
    public var isEmpty: Bool { finitePoints.isEmpty }

    /// The data's x and y ranges, widened when flat so that the scale stays defined.
    var domain: (x: ClosedRange<Double>, y: ClosedRange<Double>) {
        let points = finitePoints
        func range(_ values: [Double]) -> ClosedRange<Double> {
            guard let lo = values.min(), let hi = values.max() else { return 0...1 }
            if lo < hi { return lo...hi }
            // A flat zero (no accuracy yet) reads best as 0 at the bottom.
            if lo == 0 { return 0...1 }
            return (lo - abs(lo) * 0.1)...(hi + abs(hi) * 0.1)
        }
        return (range(points.map(\.x)), range(points.map(\.y)))
    }

    /// The chart as an `<svg>` element.
    public func render() -> String {
        typealias L = Layout
        let (xs, ys) = domain
        func px(_ x: Double) -> Double { L.plotLeft + (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * (L.plotRight - L.plotLeft) }
        func py(_ y: Double) -> Double { L.plotBottom - (y - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * (L.plotBottom - L.plotTop) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = "<svg width=\"\(Int(L.width))\" height=\"\(Int(L.height))\" viewBox=\"0 0 \(Int(L.width)) \(Int(L.height))\" class=\"chart\">\n"
        svg += "<rect class=\"plot\" x=\"\(f(L.plotLeft))\" y=\"\(f(L.plotTop))\" width=\"\(f(L.plotRight - L.plotLeft))\" height=\"\(f(L.plotBottom - L.plotTop))\"/>\n"

        let yTicks = SVGChart.ticks(ys), xTicks = SVGChart.ticks(xs).filter { $0 == $0.rounded() }
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : (ys.upperBound - ys.lowerBound) / 5
        for t in yTicks {
            svg += "<line class=\"grid\" x1=\"\(f(L.plotLeft))\" x2=\"\(f(L.plotRight))\" y1=\"\(f(py(t)))\" y2=\"\(f(py(t)))\"/>"
            svg += "<text class=\"tick\" x=\"\(f(L.plotLeft - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(format.text(t, step: yStep))</text>\n"
        }
        for t in xTicks {
            svg += "<text class=\"tick\" x=\"\(f(px(t)))\" y=\"\(f(L.plotBottom + 16))\" text-anchor=\"middle\">\(Int(t))</text>\n"
        }
        // A stage's label sits at its start, or at the left edge when the stage began before the
        // plotted range; a label that would run into the one before it moves down a row.
        var labelEnd = -Double.infinity, row = 0
        for (i, m) in markers.enumerated() {
            let next = i + 1 < markers.count ? markers[i + 1].x : .infinity
            guard m.x < xs.upperBound, next > xs.lowerBound else { continue }
            let x = px(max(m.x, xs.lowerBound))
            if m.x > xs.lowerBound {
                svg += "<line class=\"stage\" x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(L.plotTop))\" y2=\"\(f(L.plotBottom))\"/>"
            }
            // Kept inside the plot's right edge.
            let textX = min(x + 4, L.plotRight - 4 - SVGChart.textWidth(m.label))
            row = textX < labelEnd ? row + 1 : 0
            labelEnd = textX + 4 + SVGChart.textWidth(m.label)
            svg += "<text class=\"stage-label\" x=\"\(f(textX))\" y=\"\(f(L.plotTop + 12 + 12 * Double(row)))\">\(escapeHTML(m.label))</text>\n"
        }

        for (i, s) in series.enumerated() {
            let colour = SVGChart.palette[i % SVGChart.palette.count]
            svg += "<path class=\"series\" data-series=\"\(escapeHTML(s.name))\" stroke=\"\(colour)\" d=\"\(SVGChart.pathData(s.points, px, py))\"/>\n"
            // Dots when the points are few (evaluations), so a lone point between gaps still shows.
            let finite = s.points.filter { $0.y.isFinite }
            if finite.count <= 40 {
                for p in finite { svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(colour)\"/>" }
                svg += "\n"
            }
        }

        // The legend runs along the top, left to right.
        var x = L.plotLeft
        for (i, s) in series.enumerated() {
            let colour = SVGChart.palette[i % SVGChart.palette.count]
            svg += "<rect x=\"\(f(x))\" y=\"9\" width=\"14\" height=\"4\" fill=\"\(colour)\"/>"
            svg += "<text class=\"legend\" x=\"\(f(x + 19))\" y=\"15\">\(escapeHTML(s.name))</text>\n"
            x += 30 + SVGChart.textWidth(s.name)
        }
        return svg + "</svg>"
    }

    /// About how wide `text` is drawn at the chart's 11px font.
    static func textWidth(_ text: String) -> Double { 6.2 * Double(text.count) }

    /// Path data for a series: `M` starts a run of finite points, `L` continues it; a NaN ends it.
    static func pathData(_ points: [ChartPoint], _ px: (Double) -> Double, _ py: (Double) -> Double) -> String {
        var parts: [String] = [], drawing = false
        for p in points {
            guard p.y.isFinite else { drawing = false; continue }
            parts.append((drawing ? "L" : "M") + String(format: "%.1f,%.1f", px(p.x), py(p.y)))
            drawing = true
        }
        return parts.joined(separator: " ")
    }

    /// Four to six round values (1, 2 or 5 × 10^k apart) inside `range`.
    static func ticks(_ range: ClosedRange<Double>) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / 5, magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = (range.lowerBound / step).rounded(.up) * step, out: [Double] = []
        while t <= range.upperBound + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }
}
