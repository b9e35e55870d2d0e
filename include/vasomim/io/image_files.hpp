#pragma once
// Which files are images, and the inputs they stand for: every program and dataset lists folders
// the same way, so a folder of DICOM cine runs works wherever a folder of PNGs does. A multi-frame
// DICOM object stands for one input per selected frame, addressed "run.dcm#17" and named
// "run_f017" in outputs (io/dicom.hpp's frame_ref_string / frame_suffix).

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/io/dicom.hpp"

namespace vasomim::io {

/// True for the extensions read_gray8 reads (any case): .png .jpg .jpeg .bmp .tga .gif .pgm .ppm
/// .tif .tiff .npy, and .dcm .dicom (read where the build has DCMTK; refused clearly otherwise).
inline bool is_image_file(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* ok : {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".npy",
                           ".dcm", ".dicom"})
        if (e == ok) return true;
    return false;
}

/// The image files of a folder (is_image_file), sorted by name, not recursive. Throws io_error
/// when `dir` is not a readable folder.
inline std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec);
    if (ec) throw io_error("cannot list the folder '" + dir.string() + "': " + ec.message());
    std::vector<std::filesystem::path> out;
    for (const auto& e : it)
        if (e.is_regular_file(ec) && is_image_file(e.path())) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

/// The inputs one file stands for: the file itself, or "file.dcm#K" for each frame `frames`
/// selects of a multi-frame DICOM object (a single-frame object stays the file). Throws what the
/// DICOM reader throws (not DICOM, no pixel data, a selected frame past the end), naming the file;
/// without DCMTK in the build, DICOM files are returned as they are (read_gray8 then says why it
/// cannot read them).
inline std::vector<std::filesystem::path> expand_frames(const std::filesystem::path& file,
                                                        const frame_selection& frames = {}) {
#if VASOMIM_DICOM_READER
    if (has_dicom_extension(file) && !split_frame_ref(file).frame) {
        const dicom_reader r(file);
        const auto selected = frames.resolve(r.frames(), file.string());
        if (r.frames() == 1) return {file};  // a single frame keeps the file's own name
        std::vector<std::filesystem::path> out;
        for (const std::size_t k : selected) out.emplace_back(frame_ref_string(file, k));
        return out;
    }
#else
    (void)frames;
#endif
    return {file};
}

/// The stem outputs of an input are named by: "run_f017" for "run.dcm#17", else the file stem.
inline std::string input_stem(const std::filesystem::path& input) {
    const frame_ref ref = split_frame_ref(input);
    return ref.file.stem().string() + (ref.frame ? frame_suffix(*ref.frame) : std::string());
}

}  // namespace vasomim::io
