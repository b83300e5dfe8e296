import Foundation
import GuildNetCore
import GuildNetKube
import TestSupport
import Testing

/// Inputs from Fuzz/Regressions/FuzzKubeconfig, replayed through the production loader and resolver.
@Suite struct KubeconfigFuzzRegressionTests {
    /// Blank `certificate-authority-data` resolved to an empty CA (not "no CA"), so the stored,
    /// re-rendered kubeconfig resolved to a different config than the registered one.
    @Test func blankCertificateAuthorityDataIsNotSet() throws {
        let data = Data(try FuzzRegressions.input("FuzzKubeconfig", "blank-ca-data"))
        let config = try KubeClusterConfig.resolve(try KubeconfigLoader.parse(data, source: "test"), context: nil)
        #expect(config.caPEM == nil)
        let stored = try ResolvedKubeconfig.parse(stored: try KubeconfigLoader.renderYAML(config.renderedDocument()))
        #expect(stored.caPEM == config.caPEM)
        #expect(stored.server == config.server)
    }

    @Test func aKubeconfigOverTheSizeLimitIsRefused() throws {
        let data = Data(repeating: UInt8(ascii: "#"), count: KubeconfigLoader.maxBytes + 1)
        #expect(throws: HostError.self) { try KubeconfigLoader.parse(data, source: "big") }
        do {
            _ = try KubeconfigLoader.parse(data, source: "big")
        } catch let error as HostError {
            #expect(error.code == .kubeconfigInvalid)
            #expect(error.message.contains("larger than \(KubeconfigLoader.maxBytes) bytes"))
        }
    }
}
