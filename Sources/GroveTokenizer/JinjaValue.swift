import Foundation

/// A value in a Jinja template, behaving as the Python value jinja2 would hold: strings count,
/// index and slice by code point (Unicode scalar), dicts keep insertion order, `{{ }}` prints
/// Python's `str()`.
enum JinjaValue {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case dict(JinjaDict)
    /// `namespace(...)`: the one mutable object, so `{% set ns.x %}` inside a loop is seen after it.
    case namespace(JinjaNamespace)
    case function(([JinjaValue], [String: JinjaValue]) throws -> JinjaValue)

    /// A JSON value as JSONSerialization returns it.
    init(json: Any) {
        switch json {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "f", "d": self = .double(n.doubleValue)
            default: self = .int(n.intValue)
            }
        case let a as [Any]: self = .list(a.map(JinjaValue.init(json:)))
        // Foundation's JSON reader does not keep key order: keys are sorted.
        case let d as [String: Any]: self = .dict(JinjaDict(d.keys.sorted().map { ($0, JinjaValue(json: d[$0]!)) }))
        default: self = .none
        }
    }

    var isTrue: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let n): return n != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.keys.isEmpty
        case .namespace, .function: return true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    /// Python's `str()`.
    var text: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's `repr()`.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let n): return String(n)
        case .double(let d): return pythonFloat(d)
        case .string(let s):
            let quote = s.contains("'") && !s.contains("\"") ? "\"" : "'"
            var out = quote
            for u in s.unicodeScalars {
                switch u {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default: out += String(u) == quote ? "\\" + quote : String(u)
                }
            }
            return out + quote
        case .list(let l): return "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.pairs.map { "'\($0.0)': \($0.1.repr)" }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        case .function: return "<function>"
        }
    }

    /// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`, which transformers' `tojson` calls.
    func json(indent: Int?, depth: Int = 0) -> String {
        let newline = indent.map { "\n" + String(repeating: " ", count: $0 * (depth + 1)) }
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * depth) } ?? ""
        let comma = indent == nil ? ", " : ","
        switch self {
        case .undefined, .none, .namespace, .function: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let n): return String(n)
        case .double(let d): return pythonFloat(d)
        case .string(let s): return JinjaValue.jsonString(s)
        case .list(let l):
            if l.isEmpty { return "[]" }
            return "[" + l.map { (newline ?? "") + $0.json(indent: indent, depth: depth + 1) }.joined(separator: comma) + close + "]"
        case .dict(let d):
            if d.keys.isEmpty { return "{}" }
            return "{" + d.pairs.map { (newline ?? "") + JinjaValue.jsonString($0.0) + ": " + $0.1.json(indent: indent, depth: depth + 1) }
                .joined(separator: comma) + close + "}"
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{8}": out += "\\b"
            case "\u{c}": out += "\\f"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Python's float repr: Swift's shortest round-trip form agrees ("2.0", "0.1", "1e-05").
    func pythonFloat(_ d: Double) -> String { "\(d)" }

    /// Python's `==`.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)): return a.keys.count == b.keys.count && a.pairs.allSatisfy { k, v in b[k]?.equals(v) ?? false }
        default:
            if let a = number, let b = other.number { return a == b }
            return false
        }
    }

    var number: Double? {
        switch self {
        case .int(let n): return Double(n)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The items a `for` loop or `in` goes through: list items, dict keys, string characters (code points).
    func items() throws -> [JinjaValue] {
        switch self {
        case .list(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw JinjaError(message: "'\(typeName)' object is not iterable")
        }
    }
}

/// A dict that keeps its keys in insertion order, as Python's does.
struct JinjaDict {
    private(set) var keys: [String] = []
    private var values: [String: JinjaValue] = [:]

    init(_ pairs: [(String, JinjaValue)]) { for (k, v) in pairs { self[k] = v } }

    var pairs: [(String, JinjaValue)] { keys.map { ($0, values[$0]!) } }

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

final class JinjaNamespace {
    var fields: JinjaDict
    init(_ fields: JinjaDict) { self.fields = fields }
}
