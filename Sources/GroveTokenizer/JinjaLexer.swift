/// The lexer of the Jinja subset that Hugging Face chat templates use.
///
/// A template is cut into text and tags (`{{ }}`, `{% %}`, `{# #}`), and whitespace is
/// trimmed as transformers' environment does: `-` strips all whitespace on its side,
/// `trim_blocks` drops the newline after a block or comment tag, and `lstrip_blocks` drops the
/// spaces and tabs between the start of a line and a block or comment tag.
enum JinjaToken: Equatable {
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
}

enum JinjaSegment {
    case text(String)
    case output([JinjaToken], line: Int)
    case statement([JinjaToken], line: Int)
}

struct JinjaError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

enum JinjaLexer {
    private enum Kind { case output, statement, comment }
    /// `-` strips whitespace on that side; `+` keeps what lstrip_blocks / trim_blocks would remove.
    private struct Tag { var kind: Kind; var inner: String; var stripBefore, stripAfter, keepBefore, keepAfter: Bool; var line: Int }

    /// jinja2 reads the source with each "\r\n", "\r" and "\n" made "\n", and one trailing
    /// line break dropped (keep_trailing_newline is off).
    static func lines(_ source: String) -> [Unicode.Scalar] {
        let s = Array(source.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < s.count {
            if s[i] == "\n" || s[i] == "\r" {
                if s[i] == "\r", i + 1 < s.count, s[i + 1] == "\n" { i += 1 }
                if i + 1 < s.count { out.append("\n") }
            } else {
                out.append(s[i])
            }
            i += 1
        }
        return out
    }

    static func segments(_ source: String) throws -> [JinjaSegment] {
        // Pass 1: raw text pieces and tags, alternating (text, tag, text, ..., text).
        let s = lines(source)
        var texts: [[Unicode.Scalar]] = [], tags: [Tag] = []
        var i = 0, textStart = 0, line = 1
        while i < s.count {
            if s[i] == "\n" { line += 1 }
            guard s[i] == "{", i + 1 < s.count, let kind: Kind = s[i + 1] == "{" ? .output : s[i + 1] == "%" ? .statement : s[i + 1] == "#" ? .comment : nil else {
                i += 1; continue
            }
            let close: [Unicode.Scalar] = kind == .output ? ["}", "}"] : kind == .statement ? ["%", "}"] : ["#", "}"]
            var j = i + 2, end: Int?
            var quote: Unicode.Scalar?
            while j + 1 < s.count {
                if kind != .comment, let q = quote {
                    if s[j] == "\\" { j += 2; continue }
                    if s[j] == q { quote = nil }
                } else if kind != .comment && (s[j] == "'" || s[j] == "\"") {
                    quote = s[j]
                } else if s[j] == close[0] && s[j + 1] == close[1] {
                    end = j; break
                }
                j += 1
            }
            guard let end else { throw JinjaError(message: "line \(line): unclosed tag") }
            var lo = i + 2, hi = end
            let stripBefore = lo < hi && s[lo] == "-", stripAfter = hi > lo && s[hi - 1] == "-"
            let keepBefore = lo < hi && s[lo] == "+", keepAfter = hi > lo && s[hi - 1] == "+"
            if stripBefore || keepBefore { lo += 1 }
            if stripAfter || keepAfter { hi -= 1 }
            texts.append(Array(s[textStart..<i]))
            tags.append(Tag(kind: kind, inner: String(String.UnicodeScalarView(s[lo..<max(lo, hi)])), stripBefore: stripBefore, stripAfter: stripAfter,
                            keepBefore: keepBefore, keepAfter: keepAfter, line: line))
            line += s[i..<(end + 2)].filter { $0 == "\n" }.count
            i = end + 2
            textStart = i
        }
        texts.append(Array(s[textStart...]))

        // Pass 2: whitespace control on each text from the tags around it.
        var out: [JinjaSegment] = []
        for (k, var text) in texts.enumerated() {
            // Whether the text starts a line of the source (for lstrip_blocks).
            var startsLine = k == 0
            if k > 0 {
                let before = tags[k - 1]
                if before.stripAfter {
                    text = Array(text.drop { isSpace($0) })
                } else if before.kind != .output, !before.keepAfter, text.first == "\n" {
                    text.removeFirst(); startsLine = true
                }
            }
            if k < tags.count {
                let after = tags[k]
                if after.stripBefore {
                    while let last = text.last, isSpace(last) { text.removeLast() }
                } else if after.kind != .output, !after.keepBefore {
                    let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                    if (lineStart > 0 || startsLine) && text[lineStart...].allSatisfy({ $0 == " " || $0 == "\t" }) { text.removeSubrange(lineStart...) }
                }
            }
            if !text.isEmpty { out.append(.text(String(String.UnicodeScalarView(text)))) }
            if k < tags.count {
                let tag = tags[k]
                switch tag.kind {
                case .comment: break
                case .output: out.append(.output(try tokens(tag.inner, line: tag.line), line: tag.line))
                case .statement: out.append(.statement(try tokens(tag.inner, line: tag.line), line: tag.line))
                }
            }
        }
        return out
    }

    static func tokens(_ source: String, line: Int) throws -> [JinjaToken] {
        let s = Array(source.unicodeScalars)
        var out: [JinjaToken] = []
        var i = 0
        func isNameStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        while i < s.count {
            let c = s[i]
            if isSpace(c) { i += 1; continue }
            if isNameStart(c) {
                var j = i
                while j < s.count, isNameStart(s[j]) || ("0"..."9").contains(s[j]) { j += 1 }
                out.append(.name(String(String.UnicodeScalarView(s[i..<j]))))
                i = j
            } else if ("0"..."9").contains(c) {
                var j = i, isFloat = false
                while j < s.count, ("0"..."9").contains(s[j]) || (s[j] == "." && !isFloat && j + 1 < s.count && ("0"..."9").contains(s[j + 1])) {
                    if s[j] == "." { isFloat = true }
                    j += 1
                }
                let text = String(String.UnicodeScalarView(s[i..<j]))
                out.append(isFloat ? .float(Double(text)!) : .int(Int(text)!))
                i = j
            } else if c == "'" || c == "\"" {
                var j = i + 1, value = ""
                while j < s.count, s[j] != c {
                    if s[j] == "\\", j + 1 < s.count {
                        j += 1
                        switch s[j] {
                        case "n": value += "\n"
                        case "t": value += "\t"
                        case "r": value += "\r"
                        case "u" where j + 4 < s.count:
                            if let v = UInt32(String(String.UnicodeScalarView(s[(j + 1)...(j + 4)])), radix: 16), let u = Unicode.Scalar(v) {
                                value.unicodeScalars.append(u); j += 4
                            }
                        default: value.unicodeScalars.append(s[j])
                        }
                    } else {
                        value.unicodeScalars.append(s[j])
                    }
                    j += 1
                }
                guard j < s.count else { throw JinjaError(message: "line \(line): unterminated string") }
                out.append(.string(value))
                i = j + 1
            } else {
                let two = i + 1 < s.count ? String(String.UnicodeScalarView([c, s[i + 1]])) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                    out.append(.op(two)); i += 2
                } else if "()[]{},:.|~+-*/%<>=".unicodeScalars.contains(c) {
                    out.append(.op(String(c))); i += 1
                } else {
                    throw JinjaError(message: "line \(line): unexpected character '\(c)'")
                }
            }
        }
        return out
    }
}
