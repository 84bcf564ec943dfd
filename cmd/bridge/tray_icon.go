package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"

	"github.com/mailbridge/bridge/cmd/bridge/internal/traymodel"
)

// iconColors are the tray dot's colours per state.
var iconColors = map[traymodel.Icon]color.NRGBA{
	traymodel.IconOK:        {0x2e, 0x9e, 0x44, 0xff},
	traymodel.IconAttention: {0xe0, 0x8a, 0x00, 0xff},
	traymodel.IconStopped:   {0x8a, 0x8a, 0x8a, 0xff},
}

// iconPNG draws the tray icon for state: a filled dot, drawn here so the
// binary carries no image files.
func iconPNG(state traymodel.Icon) []byte {
	const size = 32
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	c := iconColors[state]
	const r = size/2 - 2
	for y := range size {
		for x := range size {
			dx, dy := x-size/2, y-size/2
			if dx*dx+dy*dy <= r*r {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// iconICO wraps a PNG in an ICO container (Windows Vista and later read
// PNG-compressed icons), which the Windows tray needs.
func iconICO(pngData []byte) []byte {
	var b bytes.Buffer
	// ICONDIR: reserved, type 1 (icon), one image.
	binary.Write(&b, binary.LittleEndian, [3]uint16{0, 1, 1})
	// ICONDIRENTRY: 32x32, no palette, 1 plane, 32 bpp, size, offset.
	b.Write([]byte{32, 32, 0, 0})
	binary.Write(&b, binary.LittleEndian, [2]uint16{1, 32})
	binary.Write(&b, binary.LittleEndian, [2]uint32{uint32(len(pngData)), 6 + 16})
	b.Write(pngData)
	return b.Bytes()
}

// trayIcon is the icon bytes systray wants on goos.
func trayIcon(state traymodel.Icon, goos string) []byte {
	p := iconPNG(state)
	if goos == "windows" {
		return iconICO(p)
	}
	return p
}
