import QAQTuning
import Testing

@Suite("QAQTuning module")
struct QAQTuningSmokeTests {
    @Test("module links")
    func links() { #expect(String(describing: QAQTuning.self) == "QAQTuning") }
}
