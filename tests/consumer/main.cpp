// Built against the installed package in CI: a GEMM and a random fill through the public headers.
#include <cstdio>

#include <vasomim/vasomim.hpp>

int main() {
    using B = vasomim::default_backend;
    vasomim::tensor<float, B> a(vasomim::shape{4, 4}), c(vasomim::shape{4, 4});
    vasomim::fill_uniform(a, vasomim::philox(7));
    vasomim::gemm<B>(vasomim::transpose::no, vasomim::transpose::yes, 4, 4, 4, 1.0f, a.data(), a.data(), 0.0f,
                     c.data());
    // A * A^T has a non-negative diagonal equal to the squared row norms.
    const auto h = c.to_host(), ha = a.to_host();
    for (int i = 0; i < 4; ++i) {
        float norm = 0;
        for (int j = 0; j < 4; ++j) norm += ha[i * 4 + j] * ha[i * 4 + j];
        if (std::abs(h[i * 5] - norm) > 1e-5f) {
            std::printf("consumer: wrong result\n");
            return 1;
        }
    }
    std::printf("consumer: vasomim %d.%d.%d found and working on the %s backend\n", VASOMIM_VERSION_MAJOR,
                VASOMIM_VERSION_MINOR, VASOMIM_VERSION_PATCH, vasomim::backend_traits<B>::name);
    return 0;
}
