import Foundation
import GroveStore

/// What a stage does, as its label in run.sqlite says (`"1:grpo"` → `.grpo`).
public enum StageKind: Equatable, Sendable {
    case sft, grpo, sftControl
    /// A kind this version of the report does not know; its metrics are still drawn.
    case other(String)

    public init(_ name: String) {
        switch name {
        case "sft": self = .sft
        case "grpo": self = .grpo
        case "sft_control": self = .sftControl
        default: self = .other(name)
        }
    }
}

/// One stage of a run as the metrics show it, placed on the run's global step axis.
public struct StageSpan: Equatable, Sendable {
    /// The label metrics are logged under, `"<index>:<kind>"`.
    public let label: String
    public let index: Int
    public let kind: StageKind
    /// The last step logged in the stage (steps count from 1; step 0 is an evaluation before training).
    public let lastStep: Int
    /// Global step of the stage's step 0: the steps of the stages before it.
    public let offset: Int
}

/// One (x, y) point of a chart series; a NaN `y` is a gap.
public struct ChartPoint: Equatable, Sendable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
}

/// A rollout as the report shows it.
public struct ReportRollout: Sendable {
    /// The stage label and step the rollout was sampled at.
    public let stage: String
    public let step: Int
    public let prompt: String
    public let completion: String
    /// `stop` or `length` (hit max_new_tokens), and the completion's tokens.
    public let finishReason: String
    public let length: Int
    /// The weighted total (nil: no function scored it).
    public let reward: Double?
    public let advantage: Double
    /// Per reward function, by name (nil: not applicable to this rollout).
    public let rewards: [(name: String, value: Double?)]
}

/// A run's history read from run.sqlite: every metric of every stage, and where rollouts were
/// stored. A run resumed from a checkpoint is a new row of `runs` pointing at the one it
/// continued (`resumed_from`); the history follows that chain back from the newest run, and a
/// step logged by several runs of the chain counts once, with the latest value.
public final class RunHistory {
    /// The runs of the chain, oldest first; the last is the one reported.
    public let runs: [RunRecord]
    /// Stages in the order they ran, laid end to end on one step axis.
    public let stages: [StageSpan]
    /// `values[stage][metric]`: (step, value) in step order, NULL as NaN.
    private let values: [String: [String: [(step: Int, value: Double)]]]
    /// Steps that hold rollouts, per stage label, in order.
    public let rolloutSteps: [String: [Int]]
    private let store: RunStore

    /// Reads the newest run of `database` (an existing run.sqlite) and the runs it resumed.
    public init(database: URL) throws {
        guard FileManager.default.fileExists(atPath: database.path) else { throw ReportError.missingDatabase(database) }
        store = try RunStore(path: database)
        let all = try store.runs()
        guard let head = all.last else { throw ReportError.noRuns(database) }
        let chain = try store.database.query("""
            WITH RECURSIVE chain(id) AS (SELECT ? UNION ALL SELECT runs.resumed_from FROM runs JOIN chain ON runs.id = chain.id
                                         WHERE runs.resumed_from IS NOT NULL)
            SELECT id FROM chain
            """, [.int(head.id)]).compactMap { $0.int(0) }
        runs = all.filter { chain.contains($0.id) }
        let ids = runs.map { String($0.id) }.joined(separator: ",")

        // Oldest run first, so a step a later run logged again overwrites the earlier value.
        var byStep: [String: [String: [Int: Double]]] = [:]
        var firstSeen: [String: Double] = [:]
        for row in try store.database.query("SELECT stage, step, name, value, wall_time, run_id FROM metrics WHERE run_id IN (\(ids)) ORDER BY run_id") {
            guard let stage = row.text(0), let name = row.text(2) else { continue }
            byStep[stage, default: [:]][name, default: [:]][Int(row.int(1) ?? 0)] = row.double(3) ?? .nan
            // Wall times restart with each run of the chain: order by (run, time).
            let seen = Double(row.int(5) ?? 0) * 1e9 + (row.double(4) ?? 0)
            firstSeen[stage] = min(firstSeen[stage] ?? .infinity, seen)
        }
        values = byStep.mapValues { $0.mapValues { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }

        var steps: [String: Set<Int>] = [:]
        for row in try store.database.query("SELECT DISTINCT stage, step FROM rollouts WHERE run_id IN (\(ids))") {
            if let stage = row.text(0) { steps[stage, default: []].insert(Int(row.int(1) ?? 0)) }
        }
        rolloutSteps = steps.mapValues { $0.sorted() }

        // Stage order: by index, then by when the stage first logged (a grpo stage before its sft_control).
        let labels = Set(byStep.keys).union(steps.keys).sorted {
            (RunHistory.index(of: $0), firstSeen[$0] ?? .infinity, $0) < (RunHistory.index(of: $1), firstSeen[$1] ?? .infinity, $1)
        }
        var offset = 0, spans: [StageSpan] = []
        for label in labels {
            let last = max(byStep[label]?.values.compactMap { $0.keys.max() }.max() ?? 0, steps[label]?.max() ?? 0)
            let kind = label.split(separator: ":", maxSplits: 1).dropFirst().first.map { StageKind(String($0)) } ?? .other(label)
            spans.append(StageSpan(label: label, index: RunHistory.index(of: label), kind: kind, lastStep: last, offset: offset))
            offset += last
        }
        stages = spans
    }

    private static func index(of label: String) -> Int { Int(label.prefix { $0 != ":" }) ?? Int.max }

    /// Every metric name logged in any stage.
    public var metricNames: Set<String> { Set(values.values.flatMap(\.keys)) }

    /// One stage's (step, value) series of a metric, in step order.
    public func values(stage: String, metric: String) -> [(step: Int, value: Double)] { values[stage]?[metric] ?? [] }

    /// A metric across all stages on the global step axis (x = stage offset + step). The first
    /// metric of `names` a stage logged is taken, so that SFT's `train/learning_rate` and GRPO's
    /// `learning_rate` make one line. The line breaks before an sft_control stage: its model
    /// starts over from where the grpo stage started, not from where the stage before it ended.
    public func series(_ names: [String]) -> [ChartPoint] {
        var points: [ChartPoint] = []
        for stage in stages {
            guard let metric = names.first(where: { values[stage.label]?[$0] != nil }), let rows = values[stage.label]?[metric] else { continue }
            if stage.kind == .sftControl, let last = points.last { points.append(ChartPoint(x: last.x, y: .nan)) }
            points += rows.map { ChartPoint(x: Double(stage.offset + $0.step), y: $0.value) }
        }
        return points
    }

    /// The latest value of a metric in a stage, if it logged one.
    public func last(_ metric: String, stage: String) -> (step: Int, value: Double)? { values(stage: stage, metric: metric).last }

    /// The rollouts of one step, in (group, sample) order; from the newest run of the chain that stored that step.
    public func rollouts(stage: String, step: Int) throws -> [ReportRollout] {
        let ids = runs.map { String($0.id) }.joined(separator: ",")
        let rows = try store.database.query("""
            SELECT id, prompt, completion, finish_reason, length, reward, advantage FROM rollouts
            WHERE run_id = (SELECT max(run_id) FROM rollouts WHERE run_id IN (\(ids)) AND stage = ? AND step = ?) AND stage = ? AND step = ?
            ORDER BY group_index, sample_index
            """, [.text(stage), .int(Int64(step)), .text(stage), .int(Int64(step))])
        return try rows.map { r in
            let rewards = try store.database.query("SELECT name, value FROM rollout_rewards WHERE rollout_id = ? ORDER BY name", [.int(r.int(0) ?? 0)])
                .map { (name: $0.text(0) ?? "", value: $0.double(1)) }
            return ReportRollout(stage: stage, step: step, prompt: r.text(1) ?? "", completion: r.text(2) ?? "",
                                 finishReason: r.text(3) ?? "", length: Int(r.int(4) ?? 0), reward: r.double(5),
                                 advantage: r.double(6) ?? 0, rewards: rewards)
        }
    }
}

/// Why a report cannot be made.
public enum ReportError: Error, CustomStringConvertible {
    case missingDatabase(URL)
    case noRuns(URL)

    public var description: String {
        switch self {
        case .missingDatabase(let url): return "\(url.path): no such file (is this a run's output folder? grove run writes run.sqlite there)"
        case .noRuns(let url): return "\(url.path) holds no runs"
        }
    }
}
