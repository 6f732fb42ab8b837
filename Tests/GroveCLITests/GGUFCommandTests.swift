import Foundation
import GroveTestSupport
import XCTest
@testable import grove
import GroveModel
import GroveRun
import GroveTokenizer

/// `grove export --gguf`, `grove info FILE.gguf`, and a recipe whose model is a GGUF file.
final class GGUFCommandTests: XCTestCase {
    let folder = Fixtures.modelA.appendingPathComponent("model")

    override func setUp() { _ = FileManager.default.changeCurrentDirectoryPath(RecipeTests.root.path) }

    func testExportThenInfoAndRun() throws {
        let dir = Fixtures.temporaryDirectory()
        let gguf = dir.appendingPathComponent("model_a.gguf")
        try Export.parse(["--gguf", gguf.path, "--model", folder.path, "--type", "q8_0"]).run()
        try Info.parse([gguf.path]).run()
        XCTAssertEqual(try Transformer.load(from: gguf).config.vocabSize, try Transformer.load(from: folder).config.vocabSize)
        XCTAssertThrowsError(try Export.parse(["--gguf", gguf.path, "--model", folder.path, "--type", "q4_0"]).run())
        // GGUF to GGUF: the tokenizer metadata is carried over.
        let again = dir.appendingPathComponent("again.gguf")
        try Export.parse(["--gguf", again.path, "--model", gguf.path]).run()
        let (a, b) = (try GGUFFile(gguf), try GGUFFile(again))
        XCTAssertEqual(a.metadata.filter { $0.key.hasPrefix("tokenizer.") }.map(\.value), b.metadata.filter { $0.key.hasPrefix("tokenizer.") }.map(\.value))

        let recipeFile = dir.appendingPathComponent("gguf.yaml")
        try """
        seed: 1
        output_dir: \(dir.appendingPathComponent("run").path)
        model: {path: \(gguf.path)}
        data: {train: Datasets/arithmetic/eval.jsonl, eval_size: 4, task: arithmetic}
        stages:
          - sft: {steps: 2, batch_size: 4, lr: 1e-3, max_length: 64}
        eval: {samples: 2, max_new_tokens: 4}
        """.write(to: recipeFile, atomically: true, encoding: .utf8)
        let recipe = try Recipe.load(path: recipeFile.path)
        guard case .pretrained(let url) = recipe.model else { return XCTFail("a .gguf path is a pretrained model") }
        XCTAssertEqual(url.path, gguf.path)
        let original = try Tokenizer(directory: folder)
        XCTAssertEqual(try recipe.rowTokenizer().encode("What is 23+45?"), original.encode("What is 23+45?"))
        _ = try RecipeRun(recipe: recipe, resume: false, observer: { _ in }).run()
        XCTAssertNoThrow(try Transformer.load(from: dir.appendingPathComponent("run/final")))
    }

    func testGGUFTokenizerErrorsNameTheFile() throws {
        let dir = Fixtures.temporaryDirectory()
        let bad = dir.appendingPathComponent("bad.gguf")
        try Data("GGUF".utf8).write(to: bad)
        XCTAssertThrowsError(try Tokenizer.load(model: bad)) { XCTAssertTrue("\($0)".hasPrefix(bad.path), "\($0)") }
        let notAFolder = dir.appendingPathComponent("model.bin")
        try Data().write(to: notAFolder)
        let recipeFile = dir.appendingPathComponent("r.yaml")
        try "model: {path: \(notAFolder.path)}\ndata: {train: Datasets/arithmetic/eval.jsonl}\nstages: [{sft: {steps: 1}}]\n"
            .write(to: recipeFile, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(path: recipeFile.path)) { XCTAssertTrue("\($0)".contains("should be a folder"), "\($0)") }
    }
}
