#pragma once
// The MAE configuration of the tests/data/vasomim_step fixture (tools/make_vasomim_step_fixture.py):
// 64 x 64 images, patch 8, width 64, depth 2, 4 heads; decoder 32 wide, 1 block of 4 heads;
// norm-pix targets. Shared by the step parity and the export tests, which use its weights.

#include "vasomim/model/mae_config.hpp"

namespace vasomim::test {

inline model::mae_config vasomim_step_config() {
    model::mae_config c;
    c.img_size = 64;
    c.patch_size = 8;
    c.in_chans = 3;
    c.embed_dim = 64;
    c.depth = 2;
    c.num_heads = 4;
    c.decoder_embed_dim = 32;
    c.decoder_depth = 1;
    c.decoder_num_heads = 4;
    c.norm_pix_loss = true;
    return c;
}

}  // namespace vasomim::test
