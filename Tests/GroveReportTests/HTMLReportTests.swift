import Foundation
import XCTest
@testable import GroveReport
import GroveStore

/// The sample run rendered, and the page read back.
final class HTMLReportTests: XCTestCase {
    /// The `<figure>` of the chart titled `title`, if the page has it.
    func figure(_ html: String, _ title: String) -> String? {
        html.components(separatedBy: "<figure>").first { $0.hasPrefix("<figcaption>\(title)<") || $0.hasPrefix("<figcaption>\(title) <span") }
    }

    /// The runs of points of a series' path: one array per `M`, each point (x, y) in pixels.
    func pathRuns(_ figure: String, series: String) throws -> [[(x: Double, y: Double)]] {
        let marker = "data-series=\"\(series)\""
        let start = try XCTUnwrap(figure.range(of: marker), "no path for series \(series)")
        let d = figure[start.upperBound...].components(separatedBy: " d=\"")[1].prefix { $0 != "\"" }
        var runs: [[(x: Double, y: Double)]] = []
        for command in d.split(separator: " ") {
            let xy = command.dropFirst().split(separator: ",").map { Double($0)! }
            if command.first == "M" { runs.append([]) }
            runs[runs.count - 1].append((xy[0], xy[1]))
        }
        return runs
    }

    /// Asserts a series' points reach every edge of the plot: its extremes are the chart's range.
    func assertSpansPlot(_ runs: [[(x: Double, y: Double)]], file: StaticString = #filePath, line: UInt = #line) {
        typealias L = SVGChart.Layout
        let points = runs.flatMap { $0 }
        XCTAssertEqual(points.map(\.x).min()!, L.plotLeft, accuracy: 0.06, file: file, line: line)
        XCTAssertEqual(points.map(\.x).max()!, L.plotRight, accuracy: 0.06, file: file, line: line)
        XCTAssertEqual(points.map(\.y).min()!, L.plotTop, accuracy: 0.06, file: file, line: line)
        XCTAssertEqual(points.map(\.y).max()!, L.plotBottom, accuracy: 0.06, file: file, line: line)
    }

    func testReportIsSelfContainedAndChartsSpanTheirData() throws {
        let file = try HTMLReport.write(runDirectory: try sampleRun())
        XCTAssertEqual(file.lastPathComponent, "report.html")
        let html = try String(contentsOf: file, encoding: .utf8)
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "the report fetches nothing")
        XCTAssertFalse(html.lowercased().contains("<script"), "no scripts, inline or fetched")
        XCTAssertTrue(html.contains("<h1>tiny &lt;run&gt;</h1>"))

        // Reward (0.1 → 0.6) and the function's mean (0.05 → 0.3) share the plot: together they
        // reach its four edges, and the total ends at the top right.
        let reward = try XCTUnwrap(figure(html, "Reward"))
        let total = try pathRuns(reward, series: "reward"), exact = try pathRuns(reward, series: "exact")
        XCTAssertEqual(total.map(\.count), [6])
        XCTAssertEqual(exact.map(\.count), [6])
        assertSpansPlot(total + exact)
        XCTAssertEqual(total[0].last!.y, SVGChart.Layout.plotTop, accuracy: 0.06)
        XCTAssertEqual(exact[0].first!.y, SVGChart.Layout.plotBottom, accuracy: 0.06)

        // KL's NaN at step 3 splits its line in two: steps 1–2 and 4–6.
        let kl = try pathRuns(try XCTUnwrap(figure(html, "KL to the reference")), series: "kl")
        XCTAssertEqual(kl.map(\.count), [2, 3])
        assertSpansPlot(kl)

        // Accuracy spans all stages: step 0 at the left edge, the control's evaluation at the right;
        // the control's point stands apart (its model restarts from the GRPO stage's start).
        let accuracy = try pathRuns(try XCTUnwrap(figure(html, "Held-out accuracy")), series: "accuracy")
        XCTAssertEqual(accuracy.map(\.count), [3, 1])
        assertSpansPlot(accuracy)
        let levels = try XCTUnwrap(figure(html, "Held-out accuracy by level"))
        XCTAssertEqual(try pathRuns(levels, series: "easy").flatMap { $0 }.count, 4)
        XCTAssertEqual(try pathRuns(levels, series: "hard").flatMap { $0 }.count, 4)

        // Every chart with data: its lines together reach the plot's four edges.
        for (title, lines) in [("Held-out accuracy by level", ["easy", "hard"]), ("Completion length", ["mean", "min", "max"]),
                               ("Loss", ["SFT loss", "held-out loss"]), ("Learning rate", ["learning rate"]),
                               ("GRPO step time", ["step", "generate", "score", "train"])] {
            let chart = try XCTUnwrap(figure(html, title), title)
            assertSpansPlot(try lines.flatMap { try pathRuns(chart, series: $0) })
        }

        // Stage boundaries: 0:sft has 5 steps, 1:grpo 6, so lines at global steps 5 and 11.
        XCTAssertEqual(try XCTUnwrap(figure(html, "Loss")).components(separatedBy: "class=\"stage\"").count - 1, 2)

        // Learning rate: SFT's train/learning_rate and GRPO's learning_rate make one line.
        XCTAssertEqual(try pathRuns(try XCTUnwrap(figure(html, "Learning rate")), series: "learning rate").flatMap { $0 }.count, 11)

        // GRPO against its control: start (the last SFT evaluation), after GRPO, after the control.
        let control = try XCTUnwrap(html.components(separatedBy: "<table class=\"control\">").dropFirst().first)
        let values = ["30.0%", "50.0%", "35.0%"].map { control.range(of: $0)?.lowerBound }
        XCTAssertTrue(values.allSatisfy { $0 != nil } && values[0]! < values[1]! && values[1]! < values[2]!, "control table: \(control.prefix(600))")
    }

    func testMissingMetricsLeaveTheirSectionsOut() throws {
        let html = try HTMLReport(history: RunHistory(database: try sampleRun().appendingPathComponent("run.sqlite"))).render()
        for absent in ["Clip ratios", "Entropy", "Gradient norm", "Throughput", "Zero-std groups and truncation"] {
            XCTAssertNil(figure(html, absent), "\(absent) has no data")
        }
        XCTAssertFalse(html.contains("GRPO loss"), "no GRPO loss logged: no such line")
        XCTAssertNotNil(figure(html, "Completion length"))
    }

    func testRolloutTextIsEscaped() throws {
        let html = try HTMLReport(history: RunHistory(database: try sampleRun().appendingPathComponent("run.sqlite"))).render()
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;42&lt;/b&gt;"))
        XCTAssertFalse(html.contains("<b>42"))
        // Best and worst at the first, middle and last GRPO steps (1, 4, 6).
        let table = try XCTUnwrap(html.components(separatedBy: "<table class=\"rollouts\">").dropFirst().first)
        for step in [1, 4, 6] { XCTAssertTrue(table.contains("1:grpo · \(step)<"), "step \(step) sampled") }
        XCTAssertFalse(table.contains("1:grpo · 2<"))
    }

    /// A resumed run continues the chain: the steps it logged again replace the earlier values,
    /// the stages it never reached still come from the first run.
    func testResumedRunFollowsTheChain() throws {
        let dir = try sampleRun()
        let store = try RunStore(path: dir.appendingPathComponent("run.sqlite"))
        let resumed = try store.beginRun(name: "tiny", recipePath: nil, recipeText: nil, seed: 0, groveVersion: "test", resumedFrom: 1)
        try store.log(run: resumed, stage: "1:grpo", step: 6, metrics: [("kl", 0.5)], wallTime: 0)
        try store.log(run: resumed, stage: "1:grpo", step: 7, metrics: [("kl", 0.6)], wallTime: 1)
        let history = try RunHistory(database: dir.appendingPathComponent("run.sqlite"))
        XCTAssertEqual(history.runs.map(\.id), [1, resumed])
        XCTAssertEqual(history.stages.map(\.label), ["0:sft", "1:grpo", "1:sft_control"])
        XCTAssertEqual(history.stages.map(\.offset), [0, 5, 12])
        XCTAssertEqual(history.values(stage: "1:grpo", metric: "kl").suffix(2).map(\.value), [0.5, 0.6])
        XCTAssertEqual(history.values(stage: "0:sft", metric: "train/loss").count, 5)
    }

    func testMissingDatabaseIsAClearErrorAndCreatesNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-report-empty-\(UUID().uuidString)")
        XCTAssertThrowsError(try HTMLReport.write(runDirectory: dir)) { error in
            XCTAssertTrue("\(error)".contains("run.sqlite: no such file"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
    }
}
