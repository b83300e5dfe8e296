import Foundation
import GuildNetRethink
import Testing

@Suite struct SCRAMTests {
    /// RFC 7677 section 3: user "user", password "pencil".
    @Test func reproducesTheRFC7677Exchange() throws {
        let clientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let clientFinalWithoutProof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        let attributes = SCRAM.attributes(serverFirst)
        let salt = try #require(attributes["s"].flatMap { Data(base64Encoded: $0) })
        let keys = try SCRAM.Keys(password: "pencil", salt: Array(salt), iterations: 4096)
        let authMessage = SCRAM.authMessage(
            clientFirstBare: clientFirstBare, serverFirst: serverFirst, clientFinalWithoutProof: clientFinalWithoutProof)
        #expect(Data(keys.clientProof(authMessage: authMessage)).base64EncodedString() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        #expect(Data(keys.serverSignature(authMessage: authMessage)).base64EncodedString() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        #expect(SCRAM.verify(proof: keys.clientProof(authMessage: authMessage), storedKey: keys.storedKey, authMessage: authMessage))
        #expect(!SCRAM.verify(proof: Array(repeating: 0, count: 32), storedKey: keys.storedKey, authMessage: authMessage))
    }

    @Test func escapesUserNames() {
        #expect(SCRAM.escape(user: "a=b,c") == "a=3Db=2Cc")
        #expect(SCRAM.unescape(user: "a=3Db=2Cc") == "a=b,c")
    }
}
