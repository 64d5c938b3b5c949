// SPDX-License-Identifier: GPL-3.0
//
// zkml gas probe: measures on the target chain what the verifiers' inner loops cost, without
// deploying anything. zkml.evm_split runs its creation code with eth_call: the constructor
// does the work, measures it with gasleft() and returns the figure as the "runtime code".
//
//   mode 0: n rounds of the public-input loop of Groth16SplitVerifier (range check, hash-chain
//           step, ecMul 0x07 of a G1 point by a nonzero scalar, ecAdd 0x06 into an accumulator);
//   mode 1: one 4-pair pairing check (0x08) of `pairs` (768 bytes, a product equal to 1).
//
// Returns 32 bytes: the gas used; reverts if a precompile fails.
pragma solidity ^0.8.20;

contract GasProbe {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    constructor(uint256 mode, uint256 n, bytes memory pairs) {
        require(pairs.length == 0x300, "pairs: 4 x 192 bytes");
        uint256 used;
        bool ok = true;
        if (mode == 0) {
            uint256 g0 = gasleft();
            bytes32 h;
            assembly ("memory-safe") {
                let m := mload(0x40)
                let p := add(m, 0x40)
                // accumulator and point: the G1 point of the first pair
                mstore(m, mload(add(pairs, 0x20)))
                mstore(add(m, 0x20), mload(add(pairs, 0x40)))
                for { let t := 0 } lt(t, n) { t := add(t, 1) } {
                    let scalar := sub(R, add(t, 1))
                    if iszero(lt(scalar, R)) { revert(0, 0) }
                    mstore(0x00, h)
                    mstore(0x20, scalar)
                    h := keccak256(0x00, 0x40)
                    mstore(p, mload(add(pairs, 0x20)))
                    mstore(add(p, 0x20), mload(add(pairs, 0x40)))
                    mstore(add(p, 0x40), scalar)
                    ok := and(ok, staticcall(gas(), 0x07, p, 0x60, p, 0x40))
                    ok := and(ok, staticcall(gas(), 0x06, m, 0x80, m, 0x40))
                }
            }
            used = g0 - gasleft();
        } else {
            uint256 g0 = gasleft();
            uint256 result;
            assembly ("memory-safe") {
                let m := mload(0x40)
                ok := staticcall(gas(), 0x08, add(pairs, 0x20), 0x300, m, 0x20)
                result := mload(m)
            }
            used = g0 - gasleft();
            ok = ok && result == 1;
        }
        require(ok, "precompile failed");
        assembly ("memory-safe") {
            mstore(0x00, used)
            return(0x00, 0x20)
        }
    }
}
