#include <gtest/gtest.h>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"

using vasomim::shape;

TEST(Shape, NumelRankAndStrides) {
    const shape s{2, 3, 4};
    EXPECT_EQ(s.rank(), 3);
    EXPECT_EQ(s.numel(), 24);
    const auto st = s.contiguous_strides();
    EXPECT_EQ(st[0], 12);
    EXPECT_EQ(st[1], 4);
    EXPECT_EQ(st[2], 1);
    EXPECT_EQ(s.to_string(), "(2, 3, 4)");
    EXPECT_EQ(shape{}.numel(), 1);
    EXPECT_EQ((shape{2, 0}).numel(), 0);
}

TEST(Shape, EqualityComparesRankAndExtents) {
    EXPECT_EQ((shape{2, 3}), (shape{2, 3}));
    EXPECT_FALSE((shape{2, 3}) == (shape{3, 2}));
    EXPECT_FALSE((shape{6}) == (shape{2, 3}));
}

TEST(Shape, RejectsNegativeExtentsAndExcessRank) {
    EXPECT_THROW((shape{2, -1}), vasomim::shape_error);
    EXPECT_THROW((shape{1, 1, 1, 1, 1, 1, 1, 1, 1}), vasomim::shape_error);
    try {
        shape{3, -7};
        FAIL() << "no exception";
    } catch (const vasomim::shape_error& e) {
        EXPECT_NE(std::string(e.what()).find("-7"), std::string::npos) << e.what();
    }
}
