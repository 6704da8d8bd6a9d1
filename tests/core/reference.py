"""Whole-image references, written straight from the catalogue's definitions.

Independent of imagepipe.core.operations on purpose: the catalogue's fused
lookup tables, alpha handling and tiling are all checked against these.
"""

from PIL import Image, ImageColor, ImageEnhance, ImageFilter, ImageOps, ImageStat

SEPIA = (0.393, 0.769, 0.189, 0, 0.349, 0.686, 0.168, 0, 0.272, 0.534, 0.131, 0)


def naive_pixelate(c, block):
    out = c.copy()
    for top in range(0, c.height, block):
        for left in range(0, c.width, block):
            box = (left, top, min(left + block, c.width), min(top + block, c.height))
            region = c.crop(box)
            n = region.width * region.height
            sums = [int(s) for s in ImageStat.Stat(region).sum]
            mean = tuple((2 * s + n) // (2 * n) for s in sums)
            out.paste(mean[0] if c.mode == "L" else mean, box)
    return out


COLOUR = {
    "grayscale": lambda c, p: c.convert("L"),
    "invert": lambda c, p: ImageOps.invert(c),
    "sepia": lambda c, p: c.convert("RGB").convert("RGB", SEPIA),
    "brightness": lambda c, p: ImageEnhance.Brightness(c).enhance(p["factor"]),
    "saturation": lambda c, p: ImageEnhance.Color(c).enhance(p["factor"]),
    "threshold": lambda c, p: c.convert("L").point(lambda v: 255 if v >= p["level"] else 0),
    "posterize": lambda c, p: ImageOps.posterize(c, p["bits"]),
    "solarize": lambda c, p: ImageOps.solarize(c, p["threshold"]),
    "gaussian_blur": lambda c, p: c.filter(ImageFilter.GaussianBlur(p["radius"])),
    "box_blur": lambda c, p: c.filter(ImageFilter.BoxBlur(p["radius"])),
    "unsharp_mask": lambda c, p: c.filter(ImageFilter.UnsharpMask(p["radius"], p["percent"], p["threshold"])),
    "sharpen": lambda c, p: c.filter(ImageFilter.SHARPEN),
    "edge_detect": lambda c, p: c.filter(ImageFilter.FIND_EDGES),
    "emboss": lambda c, p: c.filter(ImageFilter.EMBOSS),
    "median": lambda c, p: c.filter(ImageFilter.MedianFilter(p["size"])),
    "erode": lambda c, p: c.filter(ImageFilter.MinFilter(p["size"])),
    "dilate": lambda c, p: c.filter(ImageFilter.MaxFilter(p["size"])),
    "pixelate": lambda c, p: naive_pixelate(c, p["block"]),
    "contrast": lambda c, p: ImageEnhance.Contrast(c).enhance(p["factor"]),
    "autocontrast": lambda c, p: ImageOps.autocontrast(c, p["cutoff"]),
    "equalize": lambda c, p: ImageOps.equalize(c),
}
GEOMETRIC = {
    "flip_horizontal": lambda c, p: ImageOps.mirror(c),
    "flip_vertical": lambda c, p: ImageOps.flip(c),
    "rotate": lambda c, p: c.transpose(getattr(Image.Transpose, f"ROTATE_{p['angle']}")),
    "transpose": lambda c, p: c.transpose(Image.Transpose.TRANSPOSE),
}


FILTER = {
    name: getattr(Image.Resampling, name.upper())
    for name in ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
}


def resized(image, p):
    """resize as the README defines it: by a scale, or to a width and/or a height, both kept within
    (ImageOps.contain) unless the aspect is ignored."""
    method = FILTER[p["filter"]]
    if p["scale"]:
        return image.resize(
            (max(1, round(image.width * p["scale"])), max(1, round(image.height * p["scale"]))), method
        )
    if p["width"] and p["height"]:
        if p["aspect"] == "ignore":
            return image.resize((p["width"], p["height"]), method)
        # ImageOps.contain's size, but never 0 wide or high (contain's own would be empty there)
        size = ImageOps.contain(Image.new("1", image.size), (p["width"], p["height"])).size
        return image.resize((max(1, size[0]), max(1, size[1])), method)
    if p["width"]:
        return image.resize((p["width"], max(1, round(image.height * p["width"] / image.width))), method)
    return image.resize((max(1, round(image.width * p["height"] / image.height)), p["height"]), method)


def thumbnailed(image, p):
    copy = image.copy()
    copy.thumbnail((p["width"], p["height"]), FILTER[p["filter"]], p["reducing_gap"] or None)
    return copy


def cropped(image, p):
    box = (p["left"], p["top"], p["left"] + p["width"], p["top"] + p["height"])
    return image.crop(tuple(min(value, image.size[i % 2]) for i, value in enumerate(box)))


def padded(image, p):
    """pad as the README defines it: contained (never 0 wide or high), centred on the background."""
    inner = resized(
        image,
        {"scale": 0, "width": p["width"], "height": p["height"], "aspect": "keep", "filter": p["filter"]},
    )
    if inner.size == (p["width"], p["height"]):
        return inner
    out = Image.new(image.mode, (p["width"], p["height"]), ImageColor.getcolor(p["background"], image.mode))
    out.paste(inner, (round((p["width"] - inner.width) * 0.5), round((p["height"] - inner.height) * 0.5)))
    return out


# Resampling moves the alpha band with the pixels, as Pillow resizes an image with alpha.
RESAMPLE = {
    "resize": resized,
    "crop": cropped,
    "thumbnail": thumbnailed,
    "pad": padded,
    "fit": lambda c, p: ImageOps.fit(c, (p["width"], p["height"]), FILTER[p["filter"]]),
}


def reference(image, chain):
    """Each step on the whole image; colour operations leave an alpha band untouched."""
    for step in chain:
        params = {k: v for k, v in step.items() if k != "op"}
        if step["op"] in GEOMETRIC:
            image = GEOMETRIC[step["op"]](image, params)
            continue
        if step["op"] in RESAMPLE:
            image = RESAMPLE[step["op"]](image, params)
            continue
        alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
        colour = image.convert(image.mode[:-1]) if alpha else image
        image = COLOUR[step["op"]](colour, params)
        if alpha:
            image.putalpha(alpha)
    return image
