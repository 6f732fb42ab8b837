/// The syntax tree of a Jinja template, and the parser that builds it from the lexer's
/// segments. Expression precedence follows jinja2: conditional, or, and, not, comparisons
/// (including `in`), `+ -`, `~`, `* / // %`, `**`, unary minus, then postfix access, filters
/// (`|`) and tests (`is`).
indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case index(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case not(JinjaExpr)
    case negate(JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    /// `a < b <= c`: each comparison with the next operand.
    case compare(JinjaExpr, [(String, JinjaExpr)])
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpr)
    case forLoop(targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode])
    case ifChain([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    /// `set name = value`, `set a, b = value` or `set ns.attr = value`.
    case set(targets: [String], attribute: String?, JinjaExpr)
    case setBlock(String, [JinjaNode])
    /// The body only: transformers' `{% generation %}` marks assistant tokens, which Grove does not need.
    case block([JinjaNode])
    /// `macro name(a, b=default)`: a function that renders its body with its arguments bound.
    case macro(String, parameters: [(String, JinjaExpr?)], body: [JinjaNode])
    case breakLoop, continueLoop
}

struct JinjaParser {
    private var segments: [JinjaSegment]
    private var position = 0

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(segments: try JinjaLexer.segments(source))
        let (nodes, end) = try parser.nodes(until: [])
        if let end { throw JinjaError(message: "unexpected {% \(end) %}") }
        return nodes
    }

    private init(segments: [JinjaSegment]) { self.segments = segments }

    /// Nodes up to a statement whose keyword is in `ends` (returned, its tokens consumed).
    private mutating func nodes(until ends: Set<String>) throws -> ([JinjaNode], String?) {
        var out: [JinjaNode] = []
        while position < segments.count {
            let segment = segments[position]
            position += 1
            switch segment {
            case .text(let t): out.append(.text(t))
            case .output(let tokens, let line):
                var e = JinjaExprParser(tokens: tokens, line: line)
                out.append(.output(try e.parseAll()))
            case .statement(let tokens, let line):
                guard case .name(let keyword)? = tokens.first else { throw JinjaError(message: "line \(line): empty or invalid tag") }
                if ends.contains(keyword) {
                    position -= 1
                    return (out, keyword)
                }
                out.append(try statement(keyword, JinjaExprParser(tokens: Array(tokens.dropFirst()), line: line), line: line))
            }
        }
        return (out, nil)
    }

    /// The tokens of the statement the parser stopped at, consumed.
    private mutating func take() -> (tokens: [JinjaToken], line: Int) {
        guard case .statement(let tokens, let line) = segments[position] else { fatalError("take() only follows nodes(until:)") }
        position += 1
        return (Array(tokens.dropFirst()), line)
    }

    private mutating func statement(_ keyword: String, _ e: JinjaExprParser, line: Int) throws -> JinjaNode {
        var e = e
        switch keyword {
        case "for":
            var targets = [try e.name()]
            while e.accept(.op(",")) { targets.append(try e.name()) }
            try e.expect(.name("in"))
            let iterable = try e.parseOr()
            let condition = e.accept(.name("if")) ? try e.parseOr() : nil
            try e.expectEnd()
            var (body, end) = try nodes(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            if end == "else" { _ = take(); (otherwise, end) = try nodes(until: ["endfor"]) }
            guard end == "endfor" else { throw JinjaError(message: "line \(line): {% for %} without {% endfor %}") }
            _ = take()
            return .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise)
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var condition = try e.parseAll()
            while true {
                let (body, end) = try nodes(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                guard let end else { throw JinjaError(message: "line \(line): {% if %} without {% endif %}") }
                let next = take()
                if end == "elif" {
                    var c = JinjaExprParser(tokens: next.tokens, line: next.line)
                    condition = try c.parseAll()
                    continue
                }
                var otherwise: [JinjaNode] = []
                if end == "else" {
                    let (elseBody, close) = try nodes(until: ["endif"])
                    guard close == "endif" else { throw JinjaError(message: "line \(line): {% if %} without {% endif %}") }
                    _ = take()
                    otherwise = elseBody
                }
                return .ifChain(branches, otherwise: otherwise)
            }
        case "set":
            var targets = [try e.name()]
            var attribute: String?
            if e.accept(.op(".")) { attribute = try e.name() }
            while e.accept(.op(",")) { targets.append(try e.name()) }
            if e.atEnd {
                let (body, end) = try nodes(until: ["endset"])
                guard end == "endset" else { throw JinjaError(message: "line \(line): {% set %} block without {% endset %}") }
                _ = take()
                return .setBlock(targets[0], body)
            }
            try e.expect(.op("="))
            return .set(targets: targets, attribute: attribute, try e.parseAll())
        case "macro":
            let name = try e.name()
            try e.expect(.op("("))
            var parameters: [(String, JinjaExpr?)] = []
            while !e.accept(.op(")")) {
                let parameter = try e.name()
                parameters.append((parameter, e.accept(.op("=")) ? try e.parseExpression() : nil))
                if !e.accept(.op(",")) { try e.expect(.op(")")); break }
            }
            try e.expectEnd()
            let (body, end) = try nodes(until: ["endmacro"])
            guard end == "endmacro" else { throw JinjaError(message: "line \(line): {% macro %} without {% endmacro %}") }
            _ = take()
            return .macro(name, parameters: parameters, body: body)
        case "generation":
            let (body, end) = try nodes(until: ["endgeneration"])
            guard end == "endgeneration" else { throw JinjaError(message: "line \(line): {% generation %} without {% endgeneration %}") }
            _ = take()
            return .block(body)
        case "break": return .breakLoop
        case "continue": return .continueLoop
        default:
            throw JinjaError(message: "line \(line): {% \(keyword) %} is not supported (supported: for, if, set, macro, break, continue, generation)")
        }
    }
}

/// Parses the tokens of one tag into an expression.
struct JinjaExprParser {
    let tokens: [JinjaToken]
    let line: Int
    var i = 0

    init(tokens: [JinjaToken], line: Int) { self.tokens = tokens; self.line = line }

    var atEnd: Bool { i >= tokens.count }
    var peek: JinjaToken? { i < tokens.count ? tokens[i] : nil }

    func error(_ message: String) -> JinjaError { JinjaError(message: "line \(line): \(message)") }

    mutating func accept(_ t: JinjaToken) -> Bool {
        if peek == t { i += 1; return true }
        return false
    }

    mutating func expect(_ t: JinjaToken) throws {
        guard accept(t) else { throw error("expected \(t), found \(peek.map { "\($0)" } ?? "the end of the tag")") }
    }

    mutating func expectEnd() throws {
        if let t = peek { throw error("unexpected \(t)") }
    }

    mutating func name() throws -> String {
        guard case .name(let n)? = peek else { throw error("expected a name, found \(peek.map { "\($0)" } ?? "the end of the tag")") }
        i += 1
        return n
    }

    mutating func parseAll() throws -> JinjaExpr {
        let e = try parseExpression()
        try expectEnd()
        return e
    }

    /// `a if cond else b`
    mutating func parseExpression() throws -> JinjaExpr {
        let value = try parseOr()
        guard accept(.name("if")) else { return value }
        let condition = try parseOr()
        return .conditional(value, condition: condition, otherwise: accept(.name("else")) ? try parseExpression() : nil)
    }

    mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while accept(.name("or")) { left = .binary("or", left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while accept(.name("and")) { left = .binary("and", left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws -> JinjaExpr {
        if accept(.name("not")) { return .not(try parseNot()) }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> JinjaExpr {
        let first = try parseSum()
        var rest: [(String, JinjaExpr)] = []
        while true {
            if case .op(let o)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                i += 1; rest.append((o, try parseSum()))
            } else if accept(.name("in")) {
                rest.append(("in", try parseSum()))
            } else if peek == .name("not"), i + 1 < tokens.count, tokens[i + 1] == .name("in") {
                i += 2; rest.append(("not in", try parseSum()))
            } else {
                break
            }
        }
        return rest.isEmpty ? first : .compare(first, rest)
    }

    mutating func parseSum() throws -> JinjaExpr {
        var left = try parseConcat()
        while case .op(let o)? = peek, o == "+" || o == "-" { i += 1; left = .binary(o, left, try parseConcat()) }
        return left
    }

    mutating func parseConcat() throws -> JinjaExpr {
        var left = try parseProduct()
        while accept(.op("~")) { left = .binary("~", left, try parseProduct()) }
        return left
    }

    mutating func parseProduct() throws -> JinjaExpr {
        var left = try parsePower()
        while case .op(let o)? = peek, ["*", "/", "//", "%"].contains(o) { i += 1; left = .binary(o, left, try parsePower()) }
        return left
    }

    mutating func parsePower() throws -> JinjaExpr {
        var left = try parseUnary()
        while accept(.op("**")) { left = .binary("**", left, try parseUnary()) }
        return left
    }

    mutating func parseUnary() throws -> JinjaExpr {
        if accept(.op("-")) { return try filtersAndTests(.negate(try parseUnary())) }
        if accept(.op("+")) { return try parseUnary() }
        return try filtersAndTests(try postfix(try primary()))
    }

    mutating func primary() throws -> JinjaExpr {
        guard let t = peek else { throw error("expected a value, found the end of the tag") }
        i += 1
        switch t {
        case .string(var s):
            while case .string(let more)? = peek { s += more; i += 1 }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let n): return .literal(.int(n))
        case .float(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseExpression()
            if accept(.op(",")) {  // a tuple: treated as a list
                var items = [e]
                while !accept(.op(")")) { items.append(try parseExpression()); _ = accept(.op(",")) }
                return .list(items)
            }
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [JinjaExpr] = []
            while !accept(.op("]")) {
                items.append(try parseExpression())
                if !accept(.op(",")) { try expect(.op("]")); break }
            }
            return .list(items)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !accept(.op("}")) {
                let key = try parseExpression()
                try expect(.op(":"))
                pairs.append((key, try parseExpression()))
                if !accept(.op(",")) { try expect(.op("}")); break }
            }
            return .dict(pairs)
        default:
            throw error("unexpected \(t)")
        }
    }

    mutating func postfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            if accept(.op(".")) {
                e = .attribute(e, try name())
            } else if accept(.op("[")) {
                var parts: [JinjaExpr?] = [nil]
                var isSlice = false
                while !accept(.op("]")) {
                    if accept(.op(":")) { isSlice = true; parts.append(nil); continue }
                    parts[parts.count - 1] = try parseExpression()
                }
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                } else {
                    guard let index = parts[0] else { throw error("empty subscript") }
                    e = .index(e, index)
                }
            } else if accept(.op("(")) {
                let (args, kwargs) = try arguments()
                e = .call(e, args, kwargs)
            } else {
                return e
            }
        }
    }

    /// Call arguments after "(", through ")".
    mutating func arguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
        while !accept(.op(")")) {
            if case .name(let n)? = peek, i + 1 < tokens.count, tokens[i + 1] == .op("=") {
                i += 2
                kwargs.append((n, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
            if !accept(.op(",")) { try expect(.op(")")); break }
        }
        return (args, kwargs)
    }

    mutating func filtersAndTests(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            if accept(.op("|")) {
                let f = try name()
                let (args, kwargs) = accept(.op("(")) ? try arguments() : ([], [])
                e = try postfix(.filter(e, f, args, kwargs))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                let t = try name()
                var args: [JinjaExpr] = []
                if accept(.op("(")) {
                    args = try arguments().0
                } else if let next = peek, case .name(let n) = next, !["and", "or", "else", "if", "in", "not"].contains(n) {
                    args = [try primary()]
                } else if let next = peek, case .int = next {
                    args = [try primary()]
                }
                e = .test(e, t, args, negated: negated)
            } else {
                return e
            }
        }
    }
}
