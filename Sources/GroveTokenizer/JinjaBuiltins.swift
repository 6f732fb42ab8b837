import Foundation

/// The operators, filters, tests and Python methods that chat templates use.
enum JinjaBuiltins {
    static func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        switch (op, a, b) {
        case ("~", _, _): return .string(a.text + b.text)
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .list(let x), .list(let y)): return .list(x + y)
        case ("*", .string(let s), .int(let n)), ("*", .int(let n), .string(let s)): return .string(String(repeating: s, count: max(n, 0)))
        case (_, .int(let x), .int(let y)):
            switch op {
            case "+": return .int(x + y)
            case "-": return .int(x - y)
            case "*": return .int(x * y)
            case "/": guard y != 0 else { throw JinjaError(message: "division by zero") }; return .double(Double(x) / Double(y))
            case "//": guard y != 0 else { throw JinjaError(message: "division by zero") }; return .int(Int((Double(x) / Double(y)).rounded(.down)))
            case "%": guard y != 0 else { throw JinjaError(message: "modulo by zero") }; return .int(((x % y) + y) % y)
            case "**": return .int(Int(pow(Double(x), Double(y))))
            default: break
            }
        default:
            if let x = a.number, let y = b.number, !(a.isBool && b.isBool) {
                switch op {
                case "+": return .double(x + y)
                case "-": return .double(x - y)
                case "*": return .double(x * y)
                case "/": return .double(x / y)
                case "//": return .double((x / y).rounded(.down))
                case "%": return .double(x - y * (x / y).rounded(.down))
                case "**": return .double(pow(x, y))
                default: break
                }
            }
        }
        throw JinjaError(message: "unsupported operand types for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in": return try contains(b, a)
        case "not in": return !(try contains(b, a))
        default: break
        }
        let order: Int
        if let x = a.number, let y = b.number {
            order = x < y ? -1 : x > y ? 1 : 0
        } else if case .string(let x) = a, case .string(let y) = b {
            // Python compares code points.
            order = x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : x.unicodeScalars.elementsEqual(y.unicodeScalars) ? 0 : 1
        } else {
            throw JinjaError(message: "'\(op)' not supported between '\(a.typeName)' and '\(b.typeName)'")
        }
        switch op {
        case "<": return order < 0
        case ">": return order > 0
        case "<=": return order <= 0
        default: return order >= 0
        }
    }

    /// Python's `needle in haystack`.
    static func contains(_ haystack: JinjaValue, _ needle: JinjaValue) throws -> Bool {
        switch (haystack, needle) {
        case (.string(let s), .string(let n)): return n.isEmpty || Array(s.unicodeScalars).containsRun(Array(n.unicodeScalars))
        case (.dict(let d), _): return d[needle.text] != nil
        case (.list(let l), _): return l.contains { $0.equals(needle) }
        case (.undefined, _): return false
        default: throw JinjaError(message: "argument of type '\(haystack.typeName)' is not iterable")
        }
    }

    static func filter(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ kwargs: [String: JinjaValue]) throws -> JinjaValue {
        switch name {
        case "trim": return .string(strip(v.text, left: true, right: true))
        case "upper": return .string(v.text.uppercased())
        case "lower": return .string(v.text.lowercased())
        case "capitalize": let s = v.text; return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(titled(v.text, upper: true) { "-({[<".unicodeScalars.contains($0) || isSpace($0) })
        case "string": return .string(v.text)
        case "int": return .int(v.number.map(Int.init) ?? Int(v.text.trimmingCharacters(in: .whitespaces)) ?? 0)
        case "float": return .double(v.number ?? Double(v.text.trimmingCharacters(in: .whitespaces)) ?? 0)
        case "length", "count":
            if case .string(let s) = v { return .int(s.unicodeScalars.count) }
            return .int(try v.items().count)
        case "first": return try v.items().first ?? .undefined
        case "last": return try v.items().last ?? .undefined
        case "list": return .list(try v.items())
        case "reverse":
            if case .string(let s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try v.items().reversed())
        case "join": return .string(try v.items().map(\.text).joined(separator: args.first?.text ?? ""))
        case "default", "d":
            let boolean = (args.count > 1 ? args[1] : kwargs["boolean"])?.isTrue ?? false
            if case .undefined = v { return args.first ?? .string("") }
            return boolean && !v.isTrue ? args.first ?? .string("") : v
        case "replace":
            guard args.count >= 2 else { throw JinjaError(message: "replace needs two arguments") }
            return .string(v.text.replacingOccurrences(of: args[0].text, with: args[1].text, options: .literal))
        case "tojson": return .string(v.json(indent: (args.first ?? kwargs["indent"]).flatMap { $0.number.map(Int.init) }))
        case "items":
            guard case .dict(let d) = v else { throw JinjaError(message: "items of a '\(v.typeName)'") }
            return .list(d.pairs.map { .list([.string($0.0), $0.1]) })
        case "safe", "e", "escape": return name == "safe" ? v : .string(v.text)
        case "abs": return v.number.map { n in if case .int(let i) = v { return .int(abs(i)) }; return .double(abs(n)) } ?? v
        case "map":
            guard let attribute = kwargs["attribute"]?.text else { throw JinjaError(message: "map is supported with attribute= only") }
            return .list(try v.items().map { item in if case .dict(let d) = item { return d[attribute] ?? .undefined }; return .undefined })
        case "select", "reject":
            let keep = name == "select"
            return .list(try v.items().filter { item in
                let passes = args.isEmpty ? item.isTrue : try test(args[0].text, item, Array(args.dropFirst()))
                return passes == keep
            })
        case "selectattr", "rejectattr":
            guard let attribute = args.first?.text else { throw JinjaError(message: "\(name) needs an attribute name") }
            let keep = name == "selectattr"
            return .list(try v.items().filter { item in
                guard case .dict(let d) = item else { return !keep }
                let value = d[attribute] ?? .undefined
                let passes = args.count > 1 ? try test(args[1].text, value, Array(args.dropFirst(2))) : value.isTrue
                return passes == keep
            })
        default:
            throw JinjaError(message: "filter '\(name)' is not supported")
        }
    }

    static func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        switch name {
        case "defined": if case .undefined = v { return false }; return true
        case "undefined": if case .undefined = v { return true }; return false
        case "none": if case .none = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number": return v.number != nil && !v.isBool
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": return v.isBool
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": if case .dict = v { return true }; return false
        case "sequence", "iterable":
            switch v { case .list, .string, .dict: return true; default: return false }
        case "callable": if case .function = v { return true }; return false
        case "odd", "even":
            guard case .int(let n) = v else { throw JinjaError(message: "test '\(name)' of a '\(v.typeName)'") }
            return (n % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let n) = v, case .int(let d)? = args.first, d != 0 else { throw JinjaError(message: "divisibleby needs integers") }
            return n % d == 0
        case "eq", "equalto", "==": return v.equals(args.first ?? .undefined)
        case "ne", "!=": return !v.equals(args.first ?? .undefined)
        case "in": return try contains(args.first ?? .undefined, v)
        default: throw JinjaError(message: "test '\(name)' is not supported")
        }
    }

    /// Python's str, dict and list methods; nil when `v` has no such method.
    static func method(_ v: JinjaValue, _ name: String, _ args: [JinjaValue], _ kwargs: [String: JinjaValue]) throws -> JinjaValue? {
        switch v {
        case .string(let s):
            let chars = args.first.map { Set($0.text.unicodeScalars) }
            switch name {
            case "strip": return .string(strip(s, left: true, right: true, chars))
            case "lstrip": return .string(strip(s, left: true, right: false, chars))
            case "rstrip": return .string(strip(s, left: false, right: true, chars))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(titled(s, upper: false) { !$0.properties.isCased })
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "startswith": return .bool(try args.first.map { try prefixes($0).contains { s.unicodeScalars.starts(with: $0.unicodeScalars) } } ?? false)
            case "endswith": return .bool(try args.first.map { try prefixes($0).contains { s.unicodeScalars.reversed().starts(with: $0.unicodeScalars.reversed()) } } ?? false)
            case "replace":
                guard args.count >= 2 else { throw JinjaError(message: "replace needs two arguments") }
                return .string(s.replacingOccurrences(of: args[0].text, with: args[1].text, options: .literal))
            case "split":
                let scalars = Array(s.unicodeScalars)
                guard let sep = args.first, case .string(let separator) = sep else {
                    return .list(scalars.split(whereSeparator: isSpace).map { .string(String(String.UnicodeScalarView($0))) })
                }
                let needle = Array(separator.unicodeScalars)
                guard !needle.isEmpty else { throw JinjaError(message: "empty separator") }
                var parts: [JinjaValue] = [], start = 0, i = 0
                while i + needle.count <= scalars.count {
                    if scalars[i..<(i + needle.count)].elementsEqual(needle) {
                        parts.append(.string(String(String.UnicodeScalarView(scalars[start..<i]))))
                        i += needle.count; start = i
                    } else {
                        i += 1
                    }
                }
                return .list(parts + [.string(String(String.UnicodeScalarView(scalars[start...])))])
            default: return nil
            }
        case .dict(let d):
            switch name {
            case "items": return .list(d.pairs.map { .list([.string($0.0), $0.1]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.pairs.map(\.1))
            case "get": return d[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none)
            default: return nil
            }
        default:
            return nil
        }
    }

    /// Each word's first scalar upper-cased (jinja2's `title` filter) or title-cased (Python's
    /// `str.title`) and the rest lower-cased; a word starts after a scalar for which `separates`
    /// holds (the filter: space or -({[<; `str.title`: any uncased scalar).
    static func titled(_ s: String, upper: Bool, separates: (Unicode.Scalar) -> Bool) -> String {
        var out = "", startsWord = true
        for u in s.unicodeScalars {
            out += !startsWord ? u.properties.lowercaseMapping : upper ? u.properties.uppercaseMapping : u.properties.titlecaseMapping
            startsWord = separates(u)
        }
        return out
    }

    /// `startswith(("a", "b"))` takes a tuple of prefixes.
    static func prefixes(_ v: JinjaValue) throws -> [String] {
        if case .list(let l) = v { return l.map(\.text) }
        return [v.text]
    }

    /// Python's strip: whitespace, or the given characters, by code point.
    static func strip(_ s: String, left: Bool, right: Bool, _ chars: Set<Unicode.Scalar>? = nil) -> String {
        let scalars = Array(s.unicodeScalars)
        func strippable(_ u: Unicode.Scalar) -> Bool { chars?.contains(u) ?? isSpace(u) }
        var lo = 0, hi = scalars.count
        if left { while lo < hi, strippable(scalars[lo]) { lo += 1 } }
        if right { while hi > lo, strippable(scalars[hi - 1]) { hi -= 1 } }
        return String(String.UnicodeScalarView(scalars[lo..<hi]))
    }
}

extension JinjaValue {
    var isBool: Bool { if case .bool = self { return true }; return false }
}

extension Array where Element == Unicode.Scalar {
    func containsRun(_ needle: [Unicode.Scalar]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
