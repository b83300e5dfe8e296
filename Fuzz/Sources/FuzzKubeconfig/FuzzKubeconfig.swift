import Foundation
import GuildNetCore
import GuildNetKube

/// libFuzzer target: kubeconfig text through `KubeconfigLoader.parse(_:source:)` and
/// `KubeClusterConfig.resolve(_:context:)` (the path of `cluster.register` and of a stored kubeconfig).
///
/// Contract: every failure is a `HostError` `kubeconfig_invalid`. Round trip: a config that
/// resolves renders (`renderedDocument` + `renderYAML`) to text that `ResolvedKubeconfig.parse(stored:)`
/// resolves to an equal config (except that a context without a user is stored with user `user`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKubeconfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    let config: KubeClusterConfig
    do {
        let document = try KubeconfigLoader.parse(data, source: "fuzz")
        config = try KubeClusterConfig.resolve(document, context: nil)
    } catch {
        expectKubeconfigInvalid(error)
        return 0
    }
    let yaml: String
    do {
        yaml = try KubeconfigLoader.renderYAML(config.renderedDocument())
    } catch {
        preconditionFailure("a resolved config does not render: \(error)")
    }
    do {
        let stored = try ResolvedKubeconfig.parse(stored: yaml)
        var expected = config
        if expected.userName.isEmpty { expected.userName = "user" }
        precondition(stored == expected, "the stored form resolves to a different config")
    } catch {
        preconditionFailure("the stored form does not resolve: \(error)")
    }
    return 0
}

func expectKubeconfigInvalid(_ error: any Error) {
    guard let error = error as? HostError else { preconditionFailure("untyped error \(type(of: error))") }
    precondition(error.code == .kubeconfigInvalid, "unexpected error code \(error.code)")
}
