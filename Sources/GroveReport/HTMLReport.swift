import Foundation

/// A run's report: one self-contained HTML file (inline CSS and SVG, no scripts, nothing
/// fetched) with a chart per training signal, the GRPO-versus-control comparison and sample
/// rollouts. A section whose metrics the run never logged is left out.
///
/// ```swift
/// let file = try HTMLReport.write(runDirectory: URL(fileURLWithPath: "runs/quickstart"))  // runs/quickstart/report.html
/// ```
public struct HTMLReport {
    /// Where one chart line comes from.
    enum Line {
        /// One line named `label`: per stage, the first of `metrics` the stage logged.
        case metric([String], label: String)
        /// One line per metric `prefix + part + suffix` (part without "/"), named `labelPrefix + part`.
        case family(prefix: String, suffix: String, labelPrefix: String)
    }

    /// One chart of the report.
    struct Chart {
        let title: String
        let note: String
        let format: ValueFormat
        let lines: [Line]
    }

    /// The charts in report order.
    static let charts: [Chart] = [
        Chart(title: "Held-out accuracy", note: "step 0 is the model before training", format: .percent,
              lines: [.metric(["eval/accuracy"], label: "accuracy"), .family(prefix: "eval/pass@", suffix: "", labelPrefix: "pass@")]),
        Chart(title: "Held-out accuracy by level", note: "", format: .percent,
              lines: [.family(prefix: "eval/accuracy/", suffix: "", labelPrefix: "")]),
        Chart(title: "Reward", note: "weighted total and each function's mean", format: .number,
              lines: [.metric(["reward"], label: "reward"), .family(prefix: "rewards/", suffix: "/mean", labelPrefix: "")]),
        Chart(title: "Reward spread within groups", note: "each function's std", format: .number,
              lines: [.metric(["reward_std"], label: "reward std"), .family(prefix: "rewards/", suffix: "/std", labelPrefix: "")]),
        Chart(title: "Zero-std groups and truncation", note: "equal rewards carry no signal; truncated: hit max_new_tokens", format: .percent,
              lines: [.metric(["frac_reward_zero_std"], label: "zero-std groups"), .metric(["completions/clipped_ratio"], label: "truncated completions")]),
        Chart(title: "KL to the reference", note: "", format: .number, lines: [.metric(["kl"], label: "kl")]),
        Chart(title: "Entropy", note: "nats per completion token", format: .number, lines: [.metric(["entropy"], label: "entropy")]),
        Chart(title: "Completion length", note: "tokens", format: .number,
              lines: [.metric(["completions/mean_length"], label: "mean"), .metric(["completions/min_length"], label: "min"),
                      .metric(["completions/max_length"], label: "max")]),
        Chart(title: "Clip ratios", note: "share of tokens whose ratio was clipped", format: .percent,
              lines: [.metric(["clip_ratio/low_mean"], label: "low"), .metric(["clip_ratio/high_mean"], label: "high"),
                      .metric(["clip_ratio/region_mean"], label: "region")]),
        Chart(title: "Loss", note: "", format: .number,
              lines: [.metric(["train/loss"], label: "SFT loss"), .metric(["loss"], label: "GRPO loss"), .metric(["eval/loss"], label: "held-out loss")]),
        Chart(title: "Gradient norm", note: "before clipping", format: .number,
              lines: [.metric(["train/grad_norm", "grad_norm"], label: "grad norm")]),
        Chart(title: "Learning rate", note: "", format: .number,
              lines: [.metric(["train/learning_rate", "learning_rate"], label: "learning rate")]),
        Chart(title: "GRPO step time", note: "where a step's time goes", format: .seconds,
              lines: [.metric(["time/step"], label: "step"), .metric(["time/generate"], label: "generate"),
                      .metric(["time/score"], label: "score"), .metric(["time/train"], label: "train")]),
        Chart(title: "Throughput", note: "training tokens per second", format: .number,
              lines: [.metric(["train/tokens_per_second", "tokens_per_second"], label: "tokens/s")]),
        Chart(title: "Expert balance", note: "DeepSeekMoE: tokens of the busiest expert over the mean, worst layer (1 = even)", format: .number,
              lines: [.metric(["train/moe/max_over_mean", "moe/max_over_mean"], label: "max / mean")]),
    ]

    /// The run the report shows.
    public let history: RunHistory

    /// A report of `history`; `render()` makes the page.
    public init(history: RunHistory) { self.history = history }

    /// Writes `runDirectory/report.html` (or `output`) from `runDirectory/run.sqlite`; returns the file written.
    @discardableResult
    public static func write(runDirectory: URL, output: URL? = nil) throws -> URL {
        let history = try RunHistory(database: runDirectory.appendingPathComponent("run.sqlite"))
        let file = output ?? runDirectory.appendingPathComponent("report.html")
        try HTMLReport(history: history).render().write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The chart lines of a chart that has data, or none.
    func series(_ chart: Chart) -> [SVGChart.Series] {
        let names = history.metricNames
        return chart.lines.flatMap { line -> [SVGChart.Series] in
            switch line {
            case .metric(let metrics, let label): return [SVGChart.Series(name: label, points: history.series(metrics))]
            case .family(let prefix, let suffix, let labelPrefix):
                return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && $0.count > prefix.count + suffix.count }.sorted().compactMap { name in
                    let part = name.dropFirst(prefix.count).dropLast(suffix.count)
                    return part.contains("/") ? nil : SVGChart.Series(name: labelPrefix + part, points: history.series([name]))
                }
            }
        }.filter { !$0.points.isEmpty }
    }

    /// The whole page.
    public func render() throws -> String {
        let run = history.runs.last!
        var body = "<h1>\(escapeHTML(run.name))</h1>\n<p class=\"meta\">" + [
            "run \(history.runs.map { String($0.id) }.joined(separator: " → "))",
            run.status.rawValue,
            "started \(history.runs.first!.startedAt)",
            run.endedAt.map { "ended \($0)" },
            history.stages.map { "\($0.label) (\($0.lastStep) steps)" }.joined(separator: ", "),
        ].compactMap { $0.map(escapeHTML) }.joined(separator: " · ") + "</p>\n"
        if let error = run.error { body += "<p class=\"error\">\(escapeHTML(error))</p>\n" }
        body += controlComparison()
        let markers = history.stages.map { SVGChart.Marker(x: Double($0.offset), label: $0.label) }
        var figures = ""
        for chart in HTMLReport.charts {
            let svg = SVGChart(series: series(chart), markers: markers, format: chart.format)
            guard !svg.isEmpty else { continue }
            let note = chart.note.isEmpty ? "" : " <span class=\"note\">\(escapeHTML(chart.note))</span>"
            figures += "<figure><figcaption>\(escapeHTML(chart.title))\(note)</figcaption>\n\(svg.render())\n</figure>\n"
        }
        if !figures.isEmpty {
            body += "<h2>Training</h2>\n<p class=\"note\">x: steps of all stages end to end; dashed lines mark where a stage begins.</p>\n"
            body += "<div class=\"charts\">\n\(figures)</div>\n"
        }
        body += try rolloutSamples()
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escapeHTML(run.name)) · Grove report</title>
            <style>\(HTMLReport.style)</style></head>
            <body>
            \(body)</body></html>

            """
    }

    /// Per grpo stage with an sft_control: held-out accuracy where the stage started, after its
    /// GRPO steps, and after the same wall time of SFT from the same start instead.
    func controlComparison() -> String {
        var rows = ""
        for (i, grpo) in history.stages.enumerated() where grpo.kind == .grpo {
            guard let control = history.stages.first(where: { $0.kind == .sftControl && $0.index == grpo.index }),
                  let after = history.last("eval/accuracy", stage: grpo.label),
                  let controlled = history.last("eval/accuracy", stage: control.label) else { continue }
            // The start is the evaluation before the stage: the last of the stages before it, or its own step 0.
            let start = history.stages[..<i].reversed().lazy.compactMap { self.history.last("eval/accuracy", stage: $0.label) }.first
                ?? history.values(stage: grpo.label, metric: "eval/accuracy").first { $0.step == 0 }
            let entries: [(String, Double?)] = [("start of \(grpo.label)", start?.value), ("+ \(after.step) GRPO steps", after.value),
                                                ("+ \(controlled.step) SFT steps instead (\(control.label))", controlled.value)]
            for (label, value) in entries {
                let width = value.map { max(0, min(1, $0)) * 100 } ?? 0
                rows += "<tr><td>\(escapeHTML(label))</td><td class=\"num\">\(value.map { ValueFormat.percent.text($0, step: 0.001) } ?? "–")</td>"
                rows += "<td class=\"bar\"><div style=\"width:\(String(format: "%.1f", width))%\"></div></td></tr>\n"
            }
        }
        guard !rows.isEmpty else { return "" }
        return """
            <h2>GRPO against its control</h2>
            <p class="note">held-out accuracy; the control trains the model the GRPO stage started from with SFT for as long as GRPO took</p>
            <table class="control"><tr><th>model</th><th>accuracy</th><th></th></tr>
            \(rows)</table>

            """
    }

    /// The best and worst rollouts (by reward) of the first, middle and last GRPO steps that stored rollouts.
    func rolloutSamples(perEnd: Int = 2) throws -> String {
        let steps = history.stages.flatMap { stage in (history.rolloutSteps[stage.label] ?? []).map { (stage.label, $0) } }
        guard !steps.isEmpty else { return "" }
        let picked = Set([0, steps.count / 2, steps.count - 1]).sorted().map { steps[$0] }
        var rows = ""
        for (stage, step) in picked {
            let all = try history.rollouts(stage: stage, step: step)
            let ranked = all.sorted { ($0.reward ?? -.infinity) > ($1.reward ?? -.infinity) }
            let shown = ranked.prefix(perEnd).map { ("best", $0) } + ranked.dropFirst(perEnd).suffix(perEnd).map { ("worst", $0) }
            for (label, r) in shown {
                let rewards = r.rewards.map { escapeHTML($0.name) + " " + ($0.value.map { ValueFormat.number.text($0, step: 0.01) } ?? "–") }
                rows += "<tr><td>\(escapeHTML(stage)) · \(step)</td><td>\(label)</td>"
                rows += "<td class=\"num\">\(r.reward.map { ValueFormat.number.text($0, step: 0.01) } ?? "–")</td>"
                rows += "<td class=\"num\">\(rewards.joined(separator: "<br>"))</td>"
                rows += "<td class=\"num\">\(String(format: "%+.2f", r.advantage))</td><td class=\"num\">\(r.length) (\(escapeHTML(r.finishReason)))</td>"
                rows += "<td><pre>\(escapeHTML(HTMLReport.shortened(r.prompt, keeping: .end)))</pre></td><td><pre>\(escapeHTML(HTMLReport.shortened(r.completion, keeping: .start)))</pre></td></tr>\n"
            }
        }
        guard !rows.isEmpty else { return "" }
        return """
            <h2>Sample rollouts</h2>
            <p class="note">the \(perEnd) best and \(perEnd) worst completions by reward at the first, middle and last step with stored rollouts</p>
            <table class="rollouts"><tr><th>step</th><th></th><th>reward</th><th>by function</th><th>advantage</th><th>tokens</th><th>prompt</th><th>completion</th></tr>
            \(rows)</table>

            """
    }

    /// Which end of a long text to keep.
    enum TextEnd { case start, end }

    /// A long text cut to `limit` characters: prompts keep their end (the question after any
    /// template), completions their start.
    static func shortened(_ text: String, keeping end: TextEnd, limit: Int = 400) -> String {
        guard text.count > limit else { return text }
        switch end {
        case .start: return String(text.prefix(limit)) + " …"
        case .end: return "… " + String(text.suffix(limit))
        }
    }

    static let style = """
        body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; background: #fff; margin: 24px auto; max-width: 1160px; padding: 0 16px; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #e4e4e4; padding-bottom: 4px; }
        .meta, .note { color: #666; font-size: 12.5px; margin: 2px 0 10px; } .error { color: #b00020; }
        .charts { display: flex; flex-wrap: wrap; gap: 12px 16px; }
        figure { margin: 0; width: 560px; } figcaption { font-weight: 600; margin: 4px 0 2px; } figcaption .note { font-weight: normal; }
        svg.chart { display: block; background: #fff; }
        svg .plot { fill: #fafafa; stroke: #ddd; } svg .grid { stroke: #e8e8e8; }
        svg .tick, svg .legend, svg .stage-label { font-size: 11px; fill: #555; } svg .stage-label { fill: #888; font-style: italic; }
        svg .stage { stroke: #999; stroke-dasharray: 4 3; } svg .series { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
        table { border-collapse: collapse; font-size: 13px; } th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid #eee; }
        th { color: #555; font-weight: 600; } td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
        table.control td.bar { width: 240px; } table.control td.bar div { background: #0072B2; height: 12px; margin-top: 3px; }
        table.rollouts { width: 100%; } table.rollouts td:not(:has(pre)) { width: 1%; white-space: nowrap; }
        table.rollouts pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; }
        """
}
