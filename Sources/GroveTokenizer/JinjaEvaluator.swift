import Foundation

/// A parsed Jinja template, rendered as transformers' `apply_chat_template` renders it.
struct JinjaTemplate {
    let nodes: [JinjaNode]

    init(_ source: String) throws { nodes = try JinjaParser.parse(source) }

    /// The template's output for these variables (`messages`, `add_generation_prompt`, `bos_token`, ...).
    func render(_ variables: [String: JinjaValue]) throws -> String {
        var renderer = JinjaRenderer(scopes: [JinjaRenderer.globals.merging(variables) { $1 }])
        var out = ""
        _ = try renderer.run(nodes, into: &out)
        return out
    }
}

/// `raise_exception(message)` in a template: the message is the error.
struct JinjaRaised: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct JinjaRenderer {
    /// Innermost last; a `for` loop body gets its own, as in jinja2 (hence `namespace`).
    var scopes: [[String: JinjaValue]]

    enum Flow { case normal, breakLoop, continueLoop }

    static let globals: [String: JinjaValue] = [
        "raise_exception": .function { args, _ in throw JinjaRaised(message: args.first?.text ?? "") },
        "namespace": .function { _, kwargs in .namespace(JinjaNamespace(JinjaDict(kwargs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))) },
        "range": .function { args, _ in
            let n = args.map { Int($0.number ?? 0) }
            let (start, stop, step) = n.count == 1 ? (0, n[0], 1) : (n[0], n[1], n.count > 2 ? n[2] : 1)
            guard step != 0 else { throw JinjaError(message: "range() step must not be zero") }
            return .list(Array(stride(from: start, to: stop, by: step)).map { .int($0) })
        },
        "strftime_now": .function { args, _ in
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            // The strftime directives chat templates use, in DateFormatter's terms.
            let map = ["%d": "dd", "%b": "MMM", "%B": "MMMM", "%Y": "yyyy", "%m": "MM", "%H": "HH", "%M": "mm", "%S": "ss", "%y": "yy", "%A": "EEEE", "%a": "EEE"]
            formatter.dateFormat = map.reduce(args.first?.text ?? "") { $0.replacingOccurrences(of: $1.key, with: $1.value) }
            return .string(formatter.string(from: Date()))
        },
    ]

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    mutating func assign(_ name: String, _ value: JinjaValue) { scopes[scopes.count - 1][name] = value }

    mutating func run(_ nodes: [JinjaNode], into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .output(let e): out += try eval(e).text
            case .macro(let name, let parameters, let body):
                // The macro sees the variables of where it is defined, as they are then.
                let defined = scopes
                let defaults = try parameters.map { try $0.1.map(eval) }
                assign(name, .function { args, kwargs in
                    var scope: [String: JinjaValue] = [:]
                    for (i, (parameter, _)) in parameters.enumerated() {
                        scope[parameter] = i < args.count ? args[i] : kwargs[parameter] ?? defaults[i] ?? .undefined
                    }
                    var renderer = JinjaRenderer(scopes: defined + [scope])
                    var text = ""
                    _ = try renderer.run(body, into: &text)
                    return .string(text)
                })
            case .block(let body):
                let flow = try run(body, into: &out)
                if flow != .normal { return flow }
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            case .set(let targets, let attribute, let e):
                let value = try eval(e)
                if let attribute {
                    guard case .namespace(let ns) = lookup(targets[0]) else { throw JinjaError(message: "cannot set attribute '\(attribute)' of '\(targets[0])', which is not a namespace") }
                    ns.fields[attribute] = value
                } else if targets.count == 1 {
                    assign(targets[0], value)
                } else {
                    let items = try value.items()
                    guard items.count == targets.count else { throw JinjaError(message: "cannot unpack \(items.count) values into \(targets.count) names") }
                    for (t, v) in zip(targets, items) { assign(t, v) }
                }
            case .setBlock(let name, let body):
                var captured = ""
                _ = try run(body, into: &captured)
                assign(name, .string(captured))
            case .ifChain(let branches, let otherwise):
                var body = otherwise
                for (condition, b) in branches where try eval(condition).isTrue { body = b; break }
                let flow = try run(body, into: &out)
                if flow != .normal { return flow }
            case .forLoop(let targets, let iterable, let condition, let body, let otherwise):
                var items = try eval(iterable).items()
                if let condition {
                    items = try items.filter { item in
                        scopes.append([:])
                        defer { scopes.removeLast() }
                        try bind(targets, to: item)
                        return try eval(condition).isTrue
                    }
                }
                if items.isEmpty { _ = try run(otherwise, into: &out); continue }
                for (index, item) in items.enumerated() {
                    var loop = JinjaDict([])
                    loop["index0"] = .int(index); loop["index"] = .int(index + 1)
                    loop["revindex0"] = .int(items.count - index - 1); loop["revindex"] = .int(items.count - index)
                    loop["first"] = .bool(index == 0); loop["last"] = .bool(index == items.count - 1)
                    loop["length"] = .int(items.count)
                    loop["previtem"] = index > 0 ? items[index - 1] : .undefined
                    loop["nextitem"] = index + 1 < items.count ? items[index + 1] : .undefined
                    scopes.append(["loop": .dict(loop)])
                    try bind(targets, to: item)
                    let flow = try run(body, into: &out)
                    scopes.removeLast()
                    if flow == .breakLoop { break }
                }
            }
        }
        return .normal
    }

    mutating func bind(_ targets: [String], to item: JinjaValue) throws {
        if targets.count == 1 { assign(targets[0], item); return }
        let parts = try item.items()
        guard parts.count == targets.count else { throw JinjaError(message: "cannot unpack \(parts.count) values into \(targets.count) names") }
        for (t, v) in zip(targets, parts) { assign(t, v) }
    }

    func eval(_ e: JinjaExpr) throws -> JinjaValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items): return .list(try items.map(eval))
        case .dict(let pairs): return .dict(JinjaDict(try pairs.map { (try eval($0.0).text, try eval($0.1)) }))
        case .attribute(let base, let name): return member(try eval(base), name)
        case .index(let base, let index): return try subscriptValue(try eval(base), try eval(index))
        case .slice(let base, let lo, let hi, let step):
            return try slice(try eval(base), try lo.map(eval), try hi.map(eval), try step.map(eval))
        case .call(let callee, let args, let kwargs):
            let values = try args.map(eval)
            let named = Dictionary(try kwargs.map { ($0.0, try eval($0.1)) }, uniquingKeysWith: { $1 })
            if case .attribute(let base, let name) = callee {
                let object = try eval(base)
                if let result = try JinjaBuiltins.method(object, name, values, named) { return result }
            }
            guard case .function(let f) = try eval(callee) else { throw JinjaError(message: "\(callee) is not callable") }
            return try f(values, named)
        case .filter(let base, let name, let args, let kwargs):
            let named = Dictionary(try kwargs.map { ($0.0, try eval($0.1)) }, uniquingKeysWith: { $1 })
            return try JinjaBuiltins.filter(name, try eval(base), try args.map(eval), named)
        case .test(let base, let name, let args, let negated):
            let result = try JinjaBuiltins.test(name, try eval(base), try args.map(eval))
            return .bool(result != negated)
        case .not(let e): return .bool(!(try eval(e).isTrue))
        case .negate(let e):
            switch try eval(e) {
            case .int(let n): return .int(-n)
            case .double(let d): return .double(-d)
            case let v: throw JinjaError(message: "bad operand type for unary -: '\(v.typeName)'")
            }
        case .binary("and", let a, let b):
            let left = try eval(a)
            return left.isTrue ? try eval(b) : left
        case .binary("or", let a, let b):
            let left = try eval(a)
            return left.isTrue ? left : try eval(b)
        case .binary(let op, let a, let b):
            let (left, right) = (try eval(a), try eval(b))
            // jinja2's Undefined refuses arithmetic; name the variable, as it does.
            for (e, v) in [(a, left), (b, right)] where op != "~" {
                if case .undefined = v, case .name(let n) = e { throw JinjaError(message: "'\(n)' is undefined") }
            }
            return try JinjaBuiltins.arithmetic(op, left, right)
        case .compare(let first, let rest):
            var left = try eval(first)
            for (op, e) in rest {
                let right = try eval(e)
                if !(try JinjaBuiltins.compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let value, let condition, let otherwise):
            return try eval(condition).isTrue ? try eval(value) : try otherwise.map(eval) ?? .undefined
        }
    }

    /// `x.name`: a dict key or namespace field; undefined otherwise.
    func member(_ base: JinjaValue, _ name: String) -> JinjaValue {
        switch base {
        case .dict(let d): return d[name] ?? .undefined
        case .namespace(let ns): return ns.fields[name] ?? .undefined
        default: return .undefined
        }
    }

    /// `x[i]`: list and string positions count from the end when negative.
    func subscriptValue(_ base: JinjaValue, _ index: JinjaValue) throws -> JinjaValue {
        switch (base, index) {
        case (.dict, .string(let k)): return member(base, k)
        case (.namespace, .string(let k)): return member(base, k)
        case (.list(let l), .int(let i)):
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined
        case (.string(let s), .int(let i)):
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined
        default: return .undefined
        }
    }

    /// Python slicing `x[lo:hi:step]` of a list or a string.
    func slice(_ base: JinjaValue, _ lo: JinjaValue?, _ hi: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func pick<T>(_ items: [T]) throws -> [T] {
            let n = items.count, s = step.flatMap { $0.number.map(Int.init) } ?? 1
            guard s != 0 else { throw JinjaError(message: "slice step cannot be zero") }
            func bound(_ v: JinjaValue?, _ fallback: Int) -> Int {
                guard let v, let x = v.number.map(Int.init) else { return fallback }
                let y = x < 0 ? x + n : x
                return s > 0 ? min(max(y, 0), n) : min(max(y, -1), n - 1)
            }
            var out: [T] = []
            var i = bound(lo, s > 0 ? 0 : n - 1)
            let end = bound(hi, s > 0 ? n : -1)
            while s > 0 ? i < end : i > end { out.append(items[i]); i += s }
            return out
        }
        switch base {
        case .list(let l): return .list(try pick(l))
        case .string(let str): return .string(String(String.UnicodeScalarView(try pick(Array(str.unicodeScalars)))))
        default: return .undefined
        }
    }
}
