from okap_client.pkce import Pkce, s256_challenge


def test_rfc7636_appendix_b_vector():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_generated_pairs_are_fresh_and_well_formed():
    a, b = Pkce.generate(), Pkce.generate()
    assert a.verifier != b.verifier
    assert 43 <= len(a.verifier) <= 128
    assert set(a.verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert a.challenge == s256_challenge(a.verifier)
    assert a.method == "S256"
